"""LabelTree: structure, hand-computed values, properties and bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hmglib import LabelTree, LabelTreeError

PATHS = [
    ("bird", "albatross", "black-footed"),
    ("bird", "albatross", "laysan"),
    ("bird", "wren", "house wren"),
    ("ship", "carrier", "nimitz"),
    ("ship", "carrier", "enterprise"),
]
LEVELS = ["kind", "group", "type"]


@pytest.fixture
def tree() -> LabelTree:
    return LabelTree.from_paths(PATHS, LEVELS)


def random_tree(draw_sizes: list[list[int]]) -> LabelTree:
    """A tree from nested branching counts: sizes[l][k] = children of node k of level l."""
    paths: list[tuple[str, ...]] = []

    def grow(prefix: tuple[str, ...], lv: int, k: int) -> None:
        if lv == len(draw_sizes):
            paths.append(prefix)
            return
        n = draw_sizes[lv][k % len(draw_sizes[lv])]
        for c in range(n):
            grow((*prefix, f"{prefix[-1] if prefix else 'r'}.{c}"), lv + 1, k * 3 + c)

    grow((), 0, 0)
    return LabelTree.from_paths(paths, [f"L{i}" for i in range(len(draw_sizes))])


# ------------------------------------------------------------------ structure
def test_sizes_and_level_major_order(tree: LabelTree) -> None:
    assert tree.level_sizes == (2, 3, 5)
    assert tree.num_nodes == 10 and len(tree) == 10 and tree.num_levels == 3
    assert tree.names == [
        "bird", "ship", "albatross", "wren", "carrier",
        "black-footed", "laysan", "house wren", "nimitz", "enterprise",
    ]
    assert tree.parent.tolist() == [-1, -1, 0, 0, 1, 2, 2, 3, 4, 4]
    assert tree.level_of.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    assert tree.nodes_at("group").tolist() == [2, 3, 4]
    assert tree.nodes_at(-1).tolist() == tree.leaves.tolist() == [5, 6, 7, 8, 9]
    assert tree.roots.tolist() == [0, 1]
    assert tree.offset(2) == 5
    assert repr(tree) == "LabelTree(kind=2, group=3, type=5; 10 nodes, 11 legal states)"


def test_leaves_keep_path_order_even_when_unsorted() -> None:
    t = LabelTree.from_paths([("b", "y"), ("a", "x"), ("b", "z")], ["top", "leaf"])
    assert t.names == ["b", "a", "y", "x", "z"]
    assert t.leaves.tolist() == [2, 3, 4]
    assert t.parent.tolist() == [-1, -1, 0, 1, 0]


def test_navigation(tree: LabelTree) -> None:
    assert tree.index("laysan") == 6
    assert tree.ancestors(6).tolist() == [0, 2]
    assert tree.ancestors(0).tolist() == []
    assert tree.path(6).tolist() == [0, 2, 6]
    assert tree.path_names(8) == ["ship", "carrier", "nimitz"]
    assert tree.children(0).tolist() == [2, 3]
    assert tree.children(7).tolist() == []
    assert tree.descendants(0).tolist() == [2, 3, 5, 6, 7]
    assert tree.descendants(9).tolist() == []
    assert tree.to_level_index(torch.tensor([0, 3, 9])).tolist() == [0, 1, 4]


# nodes of the fixture: 0 bird, 1 ship | 2 albatross, 3 wren, 4 carrier |
# 5 black-footed, 6 laysan, 7 house wren, 8 nimitz, 9 enterprise
HAND_PARENT = [-1, -1, 0, 0, 1, 2, 2, 3, 4, 4]


def test_ancestor_matrix_by_hand(tree: LabelTree) -> None:
    a = tree.ancestor_matrix()
    assert a.shape == (10, 10) and a.dtype == torch.bool
    # row i: node i and its ancestors, written out from the fixture's paths
    expected = torch.tensor([
        # 0  1  2  3  4  5  6  7  8  9
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # 0 bird
        [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],  # 1 ship
        [1, 0, 1, 0, 0, 0, 0, 0, 0, 0],  # 2 albatross < bird
        [1, 0, 0, 1, 0, 0, 0, 0, 0, 0],  # 3 wren < bird
        [0, 1, 0, 0, 1, 0, 0, 0, 0, 0],  # 4 carrier < ship
        [1, 0, 1, 0, 0, 1, 0, 0, 0, 0],  # 5 black-footed < albatross < bird
        [1, 0, 1, 0, 0, 0, 1, 0, 0, 0],  # 6 laysan < albatross < bird
        [1, 0, 0, 1, 0, 0, 0, 1, 0, 0],  # 7 house wren < wren < bird
        [0, 1, 0, 0, 1, 0, 0, 0, 1, 0],  # 8 nimitz < carrier < ship
        [0, 1, 0, 0, 1, 0, 0, 0, 0, 1],  # 9 enterprise < carrier < ship
    ], dtype=torch.bool)
    assert torch.equal(a, expected)
    assert a[6].nonzero().flatten().tolist() == [0, 2, 6]


def legal_by_brute_force(parent: list[int]) -> set[tuple[int, ...]]:
    """Every y in {0, 1}^N that satisfies the two HEX relations of a tree:
    hierarchy (a node on implies its parent on) and exclusion (at most one root
    on, at most one child of each node on)."""
    n = len(parent)
    ys = torch.tensor(list(itertools.product([0, 1], repeat=n)), dtype=torch.bool)  # (2^N, N)
    ok = torch.ones(len(ys), dtype=torch.bool)
    on_per_group = torch.zeros(len(ys), n + 1, dtype=torch.long)  # group n: the roots
    for node, up in enumerate(parent):
        if up >= 0:
            ok &= ~ys[:, node] | ys[:, up]  # hierarchy
        on_per_group[:, up if up >= 0 else n] += ys[:, node].long()
    ok &= (on_per_group <= 1).all(dim=1)  # exclusion
    return {tuple(int(v) for v in y) for y in ys[ok]}


def test_legal_states_are_exactly_the_consistent_assignments(tree: LabelTree) -> None:
    states = tree.legal_states()
    assert states.shape == (11, 10)
    assert not states[0].any()
    assert torch.equal(states[1:], tree.ancestor_matrix())
    assert tree.parent.tolist() == HAND_PARENT
    legal = legal_by_brute_force(HAND_PARENT)  # from all 2^10 assignments
    assert len(legal) == 11
    assert legal == {tuple(int(v) for v in row) for row in states}


def test_lift(tree: LabelTree) -> None:
    t = torch.tensor([[5, 8], [2, 9]])
    assert tree.lift(t, "group").tolist() == [[2, 4], [2, 4]]
    assert tree.lift(t, 0).tolist() == [[0, 1], [0, 1]]
    assert tree.lift(torch.tensor([5, 7]), -1).tolist() == [5, 7]
    assert tree.lift(torch.tensor([], dtype=torch.long), 0).shape == (0,)


def test_csv_round_trip(tree: LabelTree, tmp_path) -> None:
    path = tmp_path / "t.csv"
    tree.to_csv(path, comment="a test table\nversion: 1")
    text = path.read_text()
    assert text.startswith("# a test table\n# version: 1\nkind,group,type\n")
    assert LabelTree.from_csv(path) == tree


def test_csv_quotes_names_with_commas(tmp_path) -> None:
    t = LabelTree.from_paths([("a, inc.", "x")], ["maker", "model"])
    t.to_csv(tmp_path / "q.csv")
    assert LabelTree.from_csv(tmp_path / "q.csv").names == ["a, inc.", "x"]


def test_csv_with_a_byte_order_mark(tmp_path) -> None:
    # spreadsheet programs save "UTF-8 CSV" with a BOM; it must not rename the first level
    table = "kind,group,type\nbird,wren,house wren\nship,carrier,nimitz\n"
    (tmp_path / "bom.csv").write_text(table, encoding="utf-8-sig")
    assert (tmp_path / "bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    t = LabelTree.from_csv(tmp_path / "bom.csv")
    assert t.level_names == ("kind", "group", "type")
    assert t.nodes_at("kind").tolist() == [0, 1]
    # a BOM before a comment line: the comment is still a comment
    (tmp_path / "bom2.csv").write_text("# source\n" + table, encoding="utf-8-sig")
    assert LabelTree.from_csv(tmp_path / "bom2.csv") == t


def test_csv_comments_only_above_the_header(tmp_path) -> None:
    ok = "# source: a test\n\n# version 1\nkind,type\nbird,wren\n\nship,nimitz\n"
    (tmp_path / "ok.csv").write_text(ok)
    t = LabelTree.from_csv(tmp_path / "ok.csv")
    assert t.names == ["bird", "ship", "wren", "nimitz"]  # blank lines are skipped
    # below the header a '#' line is an error, never a silently dropped row
    (tmp_path / "hash.csv").write_text("# c\nkind,type\nbird,wren\n#ship,nimitz\n")
    with pytest.raises(LabelTreeError, match=r"line 4 starts with '#' below the header "
                                             r"\['kind', 'type'\].*move the comment above "
                                             r"the header.*quote it \('\"#ship\",\.\.\.'\)"):
        LabelTree.from_csv(tmp_path / "hash.csv")
    # a quoted name that starts with '#' is data
    (tmp_path / "quoted.csv").write_text('kind,type\nbird,wren\n"#1 ship",nimitz\n')
    assert LabelTree.from_csv(tmp_path / "quoted.csv").names == ["bird", "#1 ship", "wren",
                                                                  "nimitz"]


def test_csv_round_trip_of_names_starting_with_hash(tmp_path) -> None:
    t = LabelTree.from_paths([("#1", "a"), ("b", "#2")], ["#level", "leaf"])
    t.to_csv(tmp_path / "h.csv", comment="names with '#'")
    assert LabelTree.from_csv(tmp_path / "h.csv") == t


# ------------------------------------------------------------------ read-only
@pytest.mark.parametrize("attr", ["parent", "level_of", "names", "level_names", "level_sizes",
                                  "_parent", "_ancestor_at", "_offsets", "anything_new"])
def test_attributes_cannot_be_assigned_or_deleted(tree: LabelTree, attr: str) -> None:
    with pytest.raises(AttributeError, match=rf"LabelTree is read-only: cannot set '{attr}'.*"
                                             r"build a new tree with LabelTree\.from_paths"):
        setattr(tree, attr, None)
    with pytest.raises(AttributeError, match=rf"cannot delete '{attr}'.*build a new tree"):
        delattr(tree, attr)


def test_writing_into_returned_structure_leaves_the_tree_unchanged(tree: LabelTree) -> None:
    from hmglib import probability as prob

    f = torch.randn(3, tree.num_nodes, dtype=torch.float64)
    before = prob.log_marginals(f, tree)  # builds (and caches) the derived indices
    tree.parent[5] = 3  # move 'black-footed' under 'wren' ... in a copy
    tree.level_of[0] = 2
    tree.names[5] = "renamed"
    with pytest.raises(TypeError):
        tree.level_sizes[0] = 7  # a tuple
    assert tree.parent.tolist() == HAND_PARENT
    assert tree.level_of.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    assert tree.names[5] == "black-footed" and tree.index("black-footed") == 5
    assert tree.path(5).tolist() == [0, 2, 5] and tree.children(3).tolist() == [7]
    assert tree.lift(torch.tensor([5]), 1).tolist() == [2]
    assert tree.ancestor_matrix()[5].nonzero().flatten().tolist() == [0, 2, 5]
    torch.testing.assert_close(prob.log_marginals(f, tree), before)
    torch.testing.assert_close(before, prob.enumerate_log_marginals(f, tree))
    assert tree == LabelTree.from_paths(PATHS, LEVELS)
    assert hash(tree) == hash(LabelTree.from_paths(PATHS, LEVELS))


def test_same_name_on_two_levels_needs_level() -> None:
    t = LabelTree.from_paths([("Cessna", "Cessna 172", "Cessna 172")], ["m", "f", "v"])
    with pytest.raises(KeyError, match=r"several levels \['f', 'v'\].*level="):
        t.index("Cessna 172")
    assert t.index("Cessna 172", level="f") == 1
    assert t.index("Cessna 172", level=-1) == 2


# ------------------------------------------------------------------ bad input
def test_empty_paths() -> None:
    with pytest.raises(LabelTreeError, match=r"`paths` is empty"):
        LabelTree.from_paths([], ["a", "b"])


def test_empty_level_names() -> None:
    with pytest.raises(LabelTreeError, match=r"`level_names` is empty"):
        LabelTree.from_paths([("x",)], [])


def test_paths_of_unequal_length() -> None:
    with pytest.raises(LabelTreeError, match=r"path 1 \['a'\] has 1 names but there are 2"):
        LabelTree.from_paths([("a", "x"), ("a",)], ["top", "leaf"])


def test_node_with_two_parents() -> None:
    with pytest.raises(LabelTreeError, match=r"node 'x' at level 'leaf' has two parents: 'a'"):
        LabelTree.from_paths([("a", "x"), ("b", "x")], ["top", "leaf"])


def test_name_used_for_two_nodes_of_one_level() -> None:
    # two different families both called 'Other', under two orders
    paths = [("O1", "Other", "s1"), ("O2", "Other", "s2")]
    with pytest.raises(LabelTreeError, match=r"'Other' at level 'family'.*'Other \(O2\)'"):
        LabelTree.from_paths(paths, ["order", "family", "species"])


def test_duplicate_leaf() -> None:
    with pytest.raises(LabelTreeError, match=r"leaf 'x' appears twice \(paths 0 and 2\)"):
        LabelTree.from_paths([("a", "x"), ("a", "y"), ("a", "x")], ["top", "leaf"])


def test_empty_name() -> None:
    with pytest.raises(LabelTreeError, match=r"empty or non-string name '' at level 'leaf'"):
        LabelTree.from_paths([("a", "")], ["top", "leaf"])


def test_duplicate_level_names() -> None:
    with pytest.raises(LabelTreeError, match=r"\['a'\] appear twice"):
        LabelTree.from_paths([("x", "y")], ["a", "a"])


def test_unknown_name_suggests(tree: LabelTree) -> None:
    with pytest.raises(KeyError, match=r"no node named 'laysn'.*'laysan'"):
        tree.index("laysn")
    with pytest.raises(KeyError, match=r"no node named 'laysan' in level 'kind'"):
        tree.index("laysan", level="kind")


@pytest.mark.parametrize(("call", "bad"), [
    (lambda t: t.ancestors(10), "node 10 is"),
    (lambda t: t.path(-1), "node -1 is"),
    (lambda t: t.children(99), "node 99 is"),
    (lambda t: t.descendants(10), "node 10 is"),
    (lambda t: t.lift(torch.tensor([3, 10]), 0), r"e\.g\. \[10\]"),
    (lambda t: t.to_level_index(torch.tensor([-2])), r"e\.g\. \[-2\]"),
])
def test_node_outside_tree(tree: LabelTree, call, bad: str) -> None:
    with pytest.raises(LabelTreeError, match=rf"{bad}.*outside the tree|outside the tree.*{bad}"):
        call(tree)
    with pytest.raises(LabelTreeError, match=r"node indices run 0\.\.9"):
        call(tree)


def test_float_targets_rejected(tree: LabelTree) -> None:
    with pytest.raises(TypeError, match="integer node indices"):
        tree.lift(torch.tensor([1.0]), 0)


def test_lift_cannot_refine(tree: LabelTree) -> None:
    with pytest.raises(LabelTreeError, match=r"target 1 \('ship', level 'kind'\) is coarser "
                                            r"than level 'group'"):
        tree.lift(torch.tensor([5, 1]), "group")


def test_unknown_level(tree: LabelTree) -> None:
    with pytest.raises(LabelTreeError, match=r"unknown level 'genus'"):
        tree.nodes_at("genus")
    with pytest.raises(LabelTreeError, match=r"level 3 is outside"):
        tree.nodes_at(3)


def test_csv_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        LabelTree.from_csv(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("# only a comment\n")
    with pytest.raises(LabelTreeError, match="has no header row"):
        LabelTree.from_csv(tmp_path / "empty.csv")
    (tmp_path / "bad.csv").write_text("# c\nkind,type\nbird,wren\nship\n")
    with pytest.raises(LabelTreeError, match=r"line 4 has 1 columns \['ship'\]"):
        LabelTree.from_csv(tmp_path / "bad.csv")
    (tmp_path / "nobody.csv").write_text("kind,type\n")
    with pytest.raises(LabelTreeError, match="no paths"):
        LabelTree.from_csv(tmp_path / "nobody.csv")


# ------------------------------------------------------------------ properties
branching = st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=3), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(branching)
def test_properties_of_random_trees(sizes: list[list[int]]) -> None:
    t = random_tree(sizes)
    n = t.num_nodes
    # level-major: levels are contiguous and non-decreasing
    assert torch.all(t.level_of[1:] >= t.level_of[:-1])
    # every parent is on the level just above
    child = t.parent >= 0
    assert torch.all(t.level_of[t.parent[child]] == t.level_of[child] - 1)
    assert torch.all(t.level_of[~child] == 0)
    # every leaf reaches exactly one root; path length = number of levels
    for leaf in t.leaves.tolist():
        p = t.path(leaf)
        assert len(p) == t.num_levels and int(t.level_of[p[0]]) == 0
    # N + 1 legal states, all distinct, each state's true nodes = a root path
    states = t.legal_states()
    assert states.shape == (n + 1, n)
    assert len({tuple(r.tolist()) for r in states}) == n + 1
    assert torch.equal(states[1:].sum(1), t.level_of + 1)
    # lifting to the root level is the first entry of each path
    assert torch.equal(t.lift(t.leaves, 0), torch.stack([t.path(int(x))[0] for x in t.leaves]))
    # children counts add up
    assert sum(len(t.children(k)) for k in range(n)) == n - len(t.roots)


@st.composite
def small_trees(draw, max_nodes: int = 12) -> tuple[LabelTree, list[tuple[str, ...]]]:
    """A random forest of at most ``max_nodes`` nodes (so that all 2^N assignments
    can be enumerated), with the paths it was built from."""
    depth = draw(st.integers(1, 4))
    roots = draw(st.integers(1, min(3, max_nodes // depth)))
    budget = [max_nodes - roots * depth]  # nodes left beyond one chain per root
    paths: list[tuple[str, ...]] = []

    def grow(prefix: tuple[str, ...]) -> None:
        if len(prefix) == depth:
            paths.append(prefix)
            return
        extra = draw(st.integers(0, min(2, budget[0] // (depth - len(prefix)))))
        budget[0] -= extra * (depth - len(prefix))  # each extra child costs one chain
        for c in range(1 + extra):
            grow((*prefix, f"{prefix[-1]}.{c}"))

    for r in range(roots):
        grow((f"r{r}",))
    order = draw(st.permutations(range(len(paths))))  # leaves in any order
    paths = [paths[i] for i in order]
    return LabelTree.from_paths(paths, [f"L{i}" for i in range(depth)]), paths


@settings(max_examples=40, deadline=None)
@given(small_trees())
def test_legal_states_of_random_trees_by_full_enumeration(drawn) -> None:
    t, paths = drawn
    assert t.num_nodes <= 12
    # the parent of every node, from the paths alone
    where = {(int(t.level_of[n]), name): n for n, name in enumerate(t.names)}
    parent = [-1] * t.num_nodes
    for path in paths:
        for lv in range(1, len(path)):
            parent[where[(lv, path[lv])]] = where[(lv - 1, path[lv - 1])]
    states = t.legal_states()
    got = {tuple(int(v) for v in row) for row in states}
    assert len(got) == len(states) == t.num_nodes + 1  # no duplicate rows
    assert got == legal_by_brute_force(parent)


@pytest.mark.parametrize("op", ["sum", "amax"])
def test_subtree_reduce_against_brute_force(tree: LabelTree, op: str) -> None:
    torch.manual_seed(0)
    values = torch.randn(4, tree.num_nodes, dtype=torch.float64, requires_grad=True)
    got = tree.subtree_reduce(values, op)
    inside = tree.ancestor_matrix().T  # [i, j]: j in the subtree of i
    for i in range(tree.num_nodes):
        sub = values[:, inside[i]]
        expected = sub.sum(1) if op == "sum" else sub.amax(1)
        assert torch.allclose(got[:, i], expected)
    got.sum().backward()  # differentiable
    assert values.grad is not None


def test_subtree_reduce_bad_input(tree: LabelTree) -> None:
    with pytest.raises(LabelTreeError, match="op must be 'sum' or 'amax'"):
        tree.subtree_reduce(torch.zeros(1, 10), "mean")
    with pytest.raises(LabelTreeError, match=r"values must be \(B, N=10\), got \(10,\)"):
        tree.subtree_reduce(torch.zeros(10))


# ---------------------------------------------------------------- drawing
def test_layout_by_hand(tree: LabelTree) -> None:
    # bird 0, ship 1, albatross 2, wren 3, carrier 4, black-footed 5, laysan 6,
    # house wren 7, nimitz 8, enterprise 9: leaves 0..4 left to right, parents at
    # the mean of their children, level l at y = -l
    pos = tree.layout()
    assert pos.dtype == torch.float64 and pos.shape == (10, 2)
    expected = torch.tensor([[1.25, 0], [3.5, 0], [0.5, -1], [2, -1], [3.5, -1],
                             [0, -2], [1, -2], [2, -2], [3, -2], [4, -2]], dtype=torch.float64)
    assert torch.equal(pos, expected)


def test_layout_keeps_the_leaves_of_one_parent_together() -> None:
    # leaves given out of depth-first order: b 0, a 1, y 2, x 3, z 4, 1 5, 2 6, 3 7, 4 8
    t = LabelTree.from_paths([("b", "y", "1"), ("a", "x", "2"), ("b", "z", "3"),
                              ("b", "y", "4")], ["t", "m", "l"])
    x = t.layout()[:, 0].tolist()
    # depth-first: 1 and 4 (under y), 3 (under z), 2 (under a/x)
    assert x == [1.25, 3.0, 0.5, 3.0, 2.0, 0.0, 3.0, 2.0, 1.0]


def test_layout_of_one_level_and_of_a_chain() -> None:
    flat = LabelTree.from_paths([("c",), ("a",), ("b",)], ["only"])
    assert flat.layout().tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]
    chain = LabelTree.from_paths([("r", "s", "t")], ["a", "b", "c"])
    assert chain.layout().tolist() == [[0.0, 0.0], [0.0, -1.0], [0.0, -2.0]]


def test_relations_by_hand(tree: LabelTree) -> None:
    assert tree.relations(tree.index("albatross")) == [
        "ancestor", "elsewhere", "label", "sibling", "elsewhere",
        "descendant", "descendant", "elsewhere", "elsewhere", "elsewhere"]
    # roots are siblings of each other; a leaf has no descendants
    assert tree.relations(0) == ["label", "sibling", "descendant", "descendant", "elsewhere",
                                 "descendant", "descendant", "descendant", "elsewhere",
                                 "elsewhere"]
    assert tree.relations(torch.tensor(9)) == ["elsewhere", "ancestor", "elsewhere",
                                               "elsewhere", "ancestor", "elsewhere",
                                               "elsewhere", "elsewhere", "sibling", "label"]


def test_relations_bad_node(tree: LabelTree) -> None:
    with pytest.raises(LabelTreeError, match=r"relations: node 10 is outside the tree"):
        tree.relations(10)
    with pytest.raises(LabelTreeError, match="relations: node must be an int node index"):
        tree.relations("wren")
