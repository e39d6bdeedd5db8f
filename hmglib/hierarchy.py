"""The label tree: the one label-structure object every method of the book uses.

A :class:`LabelTree` is a forest of ``L`` levels (coarse to fine). Every node has
one parent on the level above it (roots have none), and every root-to-leaf path
has exactly ``L`` nodes. Node indices are **level-major**: all level-0 nodes
first, then all level-1 nodes, and so on, so concatenating per-level outputs
``[out_0 | out_1 | … | out_{L-1}]`` gives a vector indexed by node.

Within a level, nodes keep the order in which they first appear in the paths
the tree was built from. Leaves keep the order of the paths themselves, so a
table written in a dataset's class-id order gives ``leaf node = offset + id``.

Two relations of the HEX graph (Deng et al., ECCV 2014) follow from the tree:

* **hierarchy**: a node being true implies its parent is true;
* **exclusion**: siblings (nodes with the same parent, or two roots) never hold
  together.

A *legal state* is an assignment ``y in {0, 1}^N`` that respects both: the empty
assignment, or the nodes of one path from a root down to some node. A tree of
``N`` nodes therefore has exactly ``N + 1`` legal states.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

__all__ = ["LabelTree", "LabelTreeError"]

Level = int | str


class LabelTreeError(ValueError):
    """A hierarchy that is not a valid label tree, or a query outside the tree."""


class LabelTree:
    """A forest of labels on ``L`` levels with level-major node indices.

    Build one with :meth:`from_paths` or :meth:`from_csv`; the constructor is
    internal.

    A tree is **read-only**: its node indices, and every index derived from
    them (here and in the caches of :mod:`hmglib.probability`), never go stale.
    Assigning or deleting an attribute raises :class:`AttributeError`; the
    tensor and list attributes are fresh copies, so writing into one changes
    only the copy. To change the structure, build a new tree.

    Attributes:
        level_names: ``L`` names of the levels, coarse to fine (a tuple).
        names: ``N`` node names, in node-index order (a new list on each access).
        level_sizes: ``L`` node counts, coarse to fine (a tuple).
        parent: ``(N,)`` int64, the parent of each node, ``-1`` for roots (a copy).
        level_of: ``(N,)`` int64 in ``[0, L)``, the level of each node (a copy).
    """

    def __init__(
        self,
        level_names: Sequence[str],
        names: Sequence[str],
        parent: Sequence[int],
        level_sizes: Sequence[int],
    ) -> None:
        def put(attr: str, value: object) -> None:
            object.__setattr__(self, attr, value)

        put("_level_names", tuple(str(n) for n in level_names))
        put("_names", tuple(names))
        put("_level_sizes", tuple(int(s) for s in level_sizes))
        parent_t = torch.tensor(list(parent), dtype=torch.long)  # (N,)
        put("_parent", parent_t)
        offsets = [0]
        for size in self._level_sizes:
            offsets.append(offsets[-1] + size)
        put("_offsets", tuple(offsets))  # L + 1 boundaries
        if len(self._names) != offsets[-1] or len(parent_t) != offsets[-1]:
            raise LabelTreeError(
                f"LabelTree: {len(self._names)} names and {len(parent_t)} parents for level "
                f"sizes {self._level_sizes} (sum {offsets[-1]}); give one name and one parent "
                "per node, or build the tree with LabelTree.from_paths or from_csv."
            )
        level_of = torch.repeat_interleave(
            torch.arange(len(self._level_sizes)), torch.tensor(self._level_sizes, dtype=torch.long)
        )  # (N,)
        put("_level_of", level_of)
        put("_index", tuple(
            {self._names[n]: n for n in range(offsets[lv], offsets[lv + 1])}
            for lv in range(self.num_levels)
        ))
        # ancestor_at[l, n]: the ancestor of node n at level l (n itself at its
        # own level), -1 where level l is finer than node n.
        anc = torch.full((self.num_levels, self.num_nodes), -1, dtype=torch.long)  # (L, N)
        anc[level_of, torch.arange(self.num_nodes)] = torch.arange(self.num_nodes)
        for lv in range(self.num_levels - 1, 0, -1):
            finer = anc[lv] >= 0
            anc[lv - 1, finer] = parent_t[anc[lv, finer]]
        put("_ancestor_at", anc)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError(
            f"LabelTree is read-only: cannot set '{attr}'. Its node indices and every index "
            "derived from them would go stale; build a new tree with LabelTree.from_paths "
            "(e.g. from [tree.path_names(leaf) for leaf in tree.leaves.tolist()], edited) or "
            "LabelTree.from_csv instead."
        )

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(
            f"LabelTree is read-only: cannot delete '{attr}'; build a new tree with "
            "LabelTree.from_paths or LabelTree.from_csv instead."
        )

    @property
    def level_names(self) -> tuple[str, ...]:
        """``L`` level names, coarse to fine."""
        return self._level_names

    @property
    def names(self) -> list[str]:
        """``N`` node names in node-index order: a new list on each access
        (editing it leaves the tree unchanged)."""
        return list(self._names)

    @property
    def level_sizes(self) -> tuple[int, ...]:
        """``L`` node counts, coarse to fine."""
        return self._level_sizes

    @property
    def parent(self) -> torch.Tensor:
        """``(N,)`` int64: the parent of each node, ``-1`` for roots. A copy:
        writing into it leaves the tree unchanged."""
        return self._parent.clone()

    @property
    def level_of(self) -> torch.Tensor:
        """``(N,)`` int64 in ``[0, L)``: the level of each node. A copy: writing
        into it leaves the tree unchanged."""
        return self._level_of.clone()

    # ------------------------------------------------------------------ build
    @classmethod
    def flat(cls, names: Iterable[str], level_name: str = "class") -> LabelTree:
        """A one-level tree: the ``C`` classes of a multi-label task (SARB), in order.

        ``LabelTree.flat(["cat", "dog"])`` has nodes ``0..C-1`` at the one level
        ``level_name``; multi-label models take it as their ``tree``.

        Raises:
            LabelTreeError: as :meth:`from_paths` (no names, an empty or repeated name).
        """
        return cls.from_paths([[n] for n in names], [level_name])

    @classmethod
    def from_paths(
        cls, paths: Iterable[Sequence[str]], level_names: Sequence[str]
    ) -> LabelTree:
        """Build a tree from root-to-leaf paths of names, one path per leaf.

        Args:
            paths: one sequence of ``L`` names per leaf, coarse to fine, e.g.
                ``("Procellariiformes", "Diomedeidae", "001.Black_footed_Albatross")``.
                Leaves keep this order; coarser nodes the order of first appearance.
            level_names: ``L >= 1`` distinct level names, coarse to fine.

        Raises:
            LabelTreeError: on empty input, a path whose length differs from
                ``len(level_names)``, an empty name, a node with two parents (one
                name used for two different nodes of a level), or a duplicate leaf.
                The message names the offending path and node.
        """
        level_names = [str(n) for n in level_names]
        if not level_names:
            raise LabelTreeError(
                "LabelTree.from_paths: `level_names` is empty; give one name per level, "
                "coarse to fine, e.g. ['order', 'family', 'species']."
            )
        dup_levels = sorted({n for n in level_names if level_names.count(n) > 1})
        if dup_levels:
            raise LabelTreeError(
                f"LabelTree.from_paths: level name(s) {dup_levels} appear twice in "
                f"{level_names}; level names must be distinct."
            )
        paths = [tuple(p) for p in paths]
        if not paths:
            raise LabelTreeError(
                "LabelTree.from_paths: `paths` is empty; give one root-to-leaf path of "
                f"{len(level_names)} names per leaf (levels {level_names})."
            )
        depth = len(level_names)
        for i, path in enumerate(paths):
            if len(path) != depth:
                raise LabelTreeError(
                    f"LabelTree.from_paths: path {i} {list(path)} has {len(path)} names but "
                    f"there are {depth} levels {level_names}; every path must name one node "
                    "per level (ragged trees are not supported: repeat a name to pad)."
                )
            for lv, name in enumerate(path):
                if not isinstance(name, str) or not name.strip():
                    raise LabelTreeError(
                        f"LabelTree.from_paths: path {i} {list(path)} has an empty or "
                        f"non-string name {name!r} at level '{level_names[lv]}'."
                    )

        per_level: list[dict[str, int]] = [{} for _ in range(depth)]  # name -> local index
        parent_of: list[dict[str, tuple[str, int]]] = [{} for _ in range(depth)]
        leaf_seen: dict[str, int] = {}
        for i, path in enumerate(paths):
            for lv, name in enumerate(path):
                if lv > 0:
                    up = path[lv - 1]
                    known = parent_of[lv].get(name)
                    if known is not None and known[0] != up:
                        raise LabelTreeError(
                            f"LabelTree.from_paths: node '{name}' at level '{level_names[lv]}' "
                            f"has two parents: '{known[0]}' (path {known[1]}) and '{up}' "
                            f"(path {i}). A tree gives each node one parent, and a name "
                            "names one node per level: if these are two different nodes, "
                            f"give them distinct names (e.g. '{name} ({up})')."
                        )
                    parent_of[lv].setdefault(name, (up, i))
                per_level[lv].setdefault(name, len(per_level[lv]))
            leaf = path[-1]
            if leaf in leaf_seen:
                raise LabelTreeError(
                    f"LabelTree.from_paths: leaf '{leaf}' appears twice (paths "
                    f"{leaf_seen[leaf]} and {i}); list each leaf once."
                )
            leaf_seen[leaf] = i

        sizes = [len(d) for d in per_level]
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        names: list[str] = []
        parent: list[int] = []
        for lv in range(depth):
            for name in per_level[lv]:  # dicts keep first-appearance order
                names.append(name)
                if lv == 0:
                    parent.append(-1)
                else:
                    up = parent_of[lv][name][0]
                    parent.append(offsets[lv - 1] + per_level[lv - 1][up])
        return cls(level_names, names, parent, sizes)

    @classmethod
    def from_csv(cls, path: str | Path) -> LabelTree:
        """Read a tree from a CSV table: one row per leaf, one column per level.

        The format of ``data/hierarchies/*.csv``:

        * lines **above the header** that start with ``#`` are comments (sources,
          version), and blank lines are skipped anywhere;
        * the first other line is the header: the level names, coarse to fine;
        * every following non-blank line is a root-to-leaf path. A data row is
          never skipped: a line below the header that starts with ``#`` is an
          error (move the comment above the header, or, when a name really
          starts with ``#``, quote it: ``"#1",...``; :meth:`to_csv` does).

        The file is read as UTF-8; a byte-order mark (as spreadsheet programs
        write) is dropped, so it never becomes part of the first level's name.

        Raises:
            FileNotFoundError: the file does not exist.
            LabelTreeError: the table is empty, a row has the wrong number of
                columns or a ``#`` line sits below the header (the message names
                the line), or the paths do not form a tree (see :meth:`from_paths`).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"LabelTree.from_csv: no file at '{path}'; give the path of a CSV table "
                "with a header row of level names and one root-to-leaf path per row."
            )
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig: drop a byte-order mark
        return cls._from_csv_text(text, source=str(path))

    @classmethod
    def _from_csv_text(cls, text: str, source: str) -> LabelTree:
        lines = io.StringIO(text, newline="").readlines()
        reader = csv.reader(lines)
        header: list[str] | None = None
        body: list[tuple[int, list[str]]] = []
        first = 0  # index of the first physical line of the next record
        for row in reader:
            lineno, raw = first + 1, lines[first]
            first = reader.line_num  # a quoted name may span several lines
            if not any(c.strip() for c in row):
                continue  # a blank line
            if raw.startswith("#"):
                if header is None:
                    continue  # a comment above the header
                raise LabelTreeError(
                    f"LabelTree.from_csv: '{source}' line {lineno} starts with '#' below the "
                    f"header {header}: {raw.rstrip()!r}. Comments are allowed only above the "
                    "header, and a data row is never skipped: move the comment above the "
                    f"header, or, if '{row[0]}' is a name, quote it ('\"{row[0]}\",...')."
                )
            cells = [c.strip() for c in row]
            if header is None:
                header = cells
            else:
                body.append((lineno, cells))
        if header is None:
            raise LabelTreeError(
                f"LabelTree.from_csv: '{source}' has no header row; its first non-comment "
                "line must name the levels, coarse to fine (e.g. 'order,family,species')."
            )
        if not body:
            raise LabelTreeError(
                f"LabelTree.from_csv: '{source}' has a header {header} but no paths; "
                "add one row per leaf."
            )
        for lineno, row in body:
            if len(row) != len(header):
                raise LabelTreeError(
                    f"LabelTree.from_csv: '{source}' line {lineno} has {len(row)} columns "
                    f"{row} but the header {header} has {len(header)}."
                )
        return cls.from_paths([r for _, r in body], header)

    def to_csv(self, path: str | Path, comment: str | None = None) -> None:
        """Write the tree as a CSV table that :meth:`from_csv` reads back.

        A row whose first name starts with ``#`` is written quoted, so that it
        is not read as a comment.

        Args:
            path: where to write (atomically; missing parent folders are created).
            comment: optional text written first as ``#`` comment lines
                (e.g. the source and version of the table).
        """
        buf = io.StringIO()
        if comment:
            for line in comment.splitlines():
                buf.write(f"# {line}".rstrip() + "\n")
        plain = csv.writer(buf, lineterminator="\n")
        quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
        for row in [list(self.level_names)] + [self.path_names(n) for n in self.leaves.tolist()]:
            (quoted if row[0].startswith("#") else plain).writerow(row)
        from hmglib import atomic  # a crash mid-write never leaves half a table

        atomic.write_text(path, buf.getvalue())

    # ------------------------------------------------------------- structure
    @property
    def num_nodes(self) -> int:
        """``N``, the number of nodes on all levels."""
        return self._offsets[-1]

    @property
    def num_levels(self) -> int:
        """``L``, the number of levels."""
        return len(self.level_sizes)

    @property
    def leaves(self) -> torch.Tensor:
        """``(N_leaf,)`` int64: the leaf node indices (the finest level), in leaf order."""
        return self.nodes_at(-1)

    @property
    def roots(self) -> torch.Tensor:
        """``(N_root,)`` int64: the root node indices (the coarsest level)."""
        return self.nodes_at(0)

    def level_index(self, level: Level) -> int:
        """The level number in ``[0, L)`` of ``level``: an int (negative counts
        from the finest level) or a level name.

        Raises:
            LabelTreeError: the level does not exist.
        """
        if isinstance(level, str):
            if level not in self.level_names:
                raise LabelTreeError(
                    f"unknown level '{level}'; this tree's levels are {list(self.level_names)}."
                )
            return self.level_names.index(level)
        if isinstance(level, bool) or not isinstance(level, int):
            raise LabelTreeError(
                f"level must be an int or a level name, got {level!r} ({type(level).__name__})."
            )
        if not -self.num_levels <= level < self.num_levels:
            raise LabelTreeError(
                f"level {level} is outside this tree's {self.num_levels} levels "
                f"{list(self.level_names)}; use 0..{self.num_levels - 1} or negative indices."
            )
        return level % self.num_levels

    def offset(self, level: Level) -> int:
        """The first node index of ``level`` (node = offset + index within the level)."""
        return self._offsets[self.level_index(level)]

    def nodes_at(self, level: Level) -> torch.Tensor:
        """``(C_level,)`` int64: the node indices of one level, in order."""
        lv = self.level_index(level)
        return torch.arange(self._offsets[lv], self._offsets[lv + 1])

    def _check_node(self, node: int, what: str = "node") -> int:
        if isinstance(node, torch.Tensor):
            if node.numel() != 1:
                raise LabelTreeError(f"{what} must be a single node index, got shape {node.shape}.")
            node = int(node.item())
        if isinstance(node, bool) or not isinstance(node, int):
            raise LabelTreeError(f"{what} must be an int node index, got {node!r}.")
        if not 0 <= node < self.num_nodes:
            raise LabelTreeError(
                f"{what} {node} is outside the tree: node indices run 0..{self.num_nodes - 1}."
            )
        return node

    def check_nodes(self, nodes: torch.Tensor, what: str = "nodes", *,
                    batch: int | None = None) -> torch.Tensor:
        """Validate node indices and return them as int64: the one node validator
        of the library (losses, metrics and probabilities call it).

        Args:
            nodes: integer node indices in ``[0, N)``; a tensor, or anything
                :func:`torch.as_tensor` takes (a list, an int). Any shape, or
                ``(batch,)`` when ``batch`` is given.
            what: the input's name, for the error messages.
            batch: when given, ``nodes`` must be one index per sample: ``(batch,)``.

        Returns:
            ``nodes`` as an int64 tensor of the same shape.

        Raises:
            TypeError: a float, bool or complex dtype (scores or one-hot vectors
                instead of node indices).
            ValueError: not of shape ``(batch,)`` when ``batch`` is given.
            LabelTreeError: an index outside ``[0, N)`` (a ``ValueError``); the
                message shows offending values.
        """
        nodes = torch.as_tensor(nodes)
        if nodes.is_floating_point() or nodes.dtype == torch.bool or nodes.is_complex():
            raise TypeError(f"{what} must hold integer node indices (int64), got dtype "
                            f"{nodes.dtype}; labels are node indices of the tree, not one-hot "
                            "vectors or scores.")
        if batch is not None and (nodes.dim() != 1 or nodes.shape[0] != batch):
            raise ValueError(f"{what} must have shape ({batch},), one node index per sample, "
                             f"got shape {tuple(nodes.shape)}.")
        nodes = nodes.long()
        bad = (nodes < 0) | (nodes >= self.num_nodes)
        if bad.any():
            first = nodes[bad].flatten()[:5].tolist()
            raise LabelTreeError(
                f"{what} hold {int(bad.sum())} node indices outside the tree (e.g. {first}); "
                f"node indices run 0..{self.num_nodes - 1}. A class index within a level "
                "becomes a node index by adding tree.offset(level)."
            )
        return nodes

    def index(self, name: str, level: Level | None = None) -> int:
        """The node index of ``name``.

        Names are unique within a level; the same name may occur on two levels
        (FGVC-Aircraft's family and variant 'Cessna 172'), and then ``level`` must say which.

        Raises:
            KeyError: the name is not in the tree (the message suggests close names),
                or it is on several levels and ``level`` was not given.
        """
        levels = range(self.num_levels) if level is None else [self.level_index(level)]
        hits = [self._index[lv][name] for lv in levels if name in self._index[lv]]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            where = [self.level_names[self._level_of[h]] for h in hits]
            raise KeyError(
                f"'{name}' names a node on several levels {where}; pass level= one of them."
            )
        pool = [n for lv in levels for n in self._index[lv]]
        close = difflib.get_close_matches(name, pool, n=3)
        scope = "this tree" if level is None else f"level '{self.level_names[levels[0]]}'"
        hint = f" Did you mean {close}?" if close else ""
        raise KeyError(f"no node named '{name}' in {scope}.{hint}")

    def children(self, node: int) -> torch.Tensor:
        """``(K,)`` int64: the children of ``node`` in index order (empty for a leaf)."""
        node = self._check_node(node)
        return torch.nonzero(self._parent == node).flatten()

    def ancestors(self, node: int) -> torch.Tensor:
        """``(level_of[node],)`` int64: the strict ancestors of ``node``, root first."""
        node = self._check_node(node)
        lv = int(self._level_of[node])
        return self._ancestor_at[:lv, node].clone()

    def path(self, node: int) -> torch.Tensor:
        """``(level_of[node] + 1,)`` int64: the root-to-node path, ending at ``node``."""
        node = self._check_node(node)
        lv = int(self._level_of[node])
        return self._ancestor_at[: lv + 1, node].clone()

    def path_names(self, node: int) -> list[str]:
        """The names on the root-to-node path."""
        return [self._names[n] for n in self.path(node).tolist()]

    def descendants(self, node: int) -> torch.Tensor:
        """``(K,)`` int64: the strict descendants of ``node``, level by level."""
        node = self._check_node(node)
        lv = int(self._level_of[node])
        return torch.nonzero((self._ancestor_at[lv] == node) & (self._level_of > lv)).flatten()

    def ancestor_table(self) -> torch.Tensor:
        """``(L, N)`` int64: entry ``[l, n]`` is the ancestor of node ``n`` on level
        ``l`` (``n`` itself on its own level), ``-1`` on the levels finer than ``n``.

        The table every ancestor query of the library reads (:meth:`lift`,
        :meth:`path`, :meth:`ancestor_matrix`, the recursions of
        :mod:`hmglib.probability`); built once with the tree, returned as a copy.
        """
        return self._ancestor_at.clone()

    def ancestor_matrix(self) -> torch.Tensor:
        """``(N, N)`` bool: ``A[i, j]`` is True when node ``j`` is node ``i`` or one of
        its ancestors. Row ``i`` is the legal state that ends at node ``i``."""
        n = self.num_nodes
        a = torch.zeros(n, n, dtype=torch.bool)  # (N, N)
        rows = torch.arange(n).expand(self.num_levels, n)  # (L, N)
        valid = self._ancestor_at >= 0  # (L, N)
        a[rows[valid], self._ancestor_at[valid]] = True
        return a

    def legal_states(self) -> torch.Tensor:
        """``(N + 1, N)`` bool: every legal assignment of the tree.

        Row 0 is the empty state (no node true); row ``k + 1`` is the path from a
        root to node ``k`` (``legal_states()[1:] == ancestor_matrix()``). A state
        satisfies both HEX relations: child implies parent, siblings exclude.
        """
        empty = torch.zeros(1, self.num_nodes, dtype=torch.bool)  # (1, N)
        return torch.cat([empty, self.ancestor_matrix()], dim=0)  # (N + 1, N)

    def lift(self, targets: torch.Tensor, level: Level) -> torch.Tensor:
        """Map node indices to their ancestor (or themselves) at ``level``.

        Args:
            targets: int64 node indices of any shape (labels at any level).
            level: the coarser-or-equal level to lift to (int or name).

        Returns:
            int64 tensor of the same shape: node indices on ``level``.

        Raises:
            LabelTreeError: a target is outside the tree, or is coarser than
                ``level`` (a coarse label cannot be refined).
        """
        lv = self.level_index(level)
        targets = self.check_nodes(targets, "lift: targets")
        lifted = self._ancestor_at[lv][targets]  # same shape as targets
        coarse = lifted < 0
        if coarse.any():
            t = int(targets[coarse].flatten()[0])
            raise LabelTreeError(
                f"lift: target {t} ('{self._names[t]}', level "
                f"'{self.level_names[int(self._level_of[t])]}') is coarser than level "
                f"'{self.level_names[lv]}' ({int(coarse.sum())} such targets); lift maps a "
                "label to its ancestors and cannot refine it. Lift to a level at or above "
                "the coarsest target."
            )
        return lifted

    def subtree_reduce(self, values: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce ``values`` over each node's subtree (the node and its descendants).

        Args:
            values: ``(B, N)`` float, one value per node in node order.
            op: ``"sum"`` (e.g. leaf probabilities → the probability of every
                ancestor) or ``"amax"`` (e.g. C-HMCNN's max constraint).

        Returns:
            ``(B, N)``: entry ``i`` reduces ``values[:, j]`` over ``j`` in the subtree
            of ``i``. Computed bottom-up one level at a time (O(N) per row).
        """
        if op not in ("sum", "amax"):
            raise LabelTreeError(f"subtree_reduce: op must be 'sum' or 'amax', got '{op}'.")
        if values.dim() != 2 or values.shape[1] != self.num_nodes:
            raise LabelTreeError(f"subtree_reduce: values must be (B, N={self.num_nodes}), "
                                 f"got {tuple(values.shape)}.")
        out = values.clone()  # (B, N)
        for lv in range(self.num_levels - 1, 0, -1):
            kids = self.nodes_at(lv)  # (C_l,)
            parents = self._parent[kids].to(values.device)  # (C_l,)
            upper = out[:, : self.offset(lv)].scatter_reduce(
                1, parents.expand(len(values), -1), out[:, kids], reduce=op, include_self=True
            )  # (B, offset(lv)): levels above lv, their children folded in
            out = torch.cat([upper, out[:, self.offset(lv):]], dim=1)  # (B, N)
        return out

    def to_level_index(self, nodes: torch.Tensor) -> torch.Tensor:
        """Node indices → class indices within their own level (``node - offset``)."""
        nodes = self.check_nodes(nodes, "to_level_index: nodes")
        offsets = torch.tensor(self._offsets[:-1])
        return nodes - offsets[self._level_of[nodes]]

    # ---------------------------------------------------------------- drawing
    def layout(self) -> torch.Tensor:
        """``(N, 2)`` float64: an ``(x, y)`` position per node for a layered drawing.

        Leaves are spread one unit apart, ``x = 0, 1, ..., N_leaf - 1``, in
        depth-first order (sorted by their root-to-leaf paths of node indices),
        so the leaves of one parent are adjacent and no two edges cross. An inner
        node sits at the mean ``x`` of its children. Level ``l`` is at ``y = -l``
        (roots at ``y = 0``, leaves at ``y = -(L - 1)``).
        """
        leaves = self.leaves  # (N_leaf,)
        paths = self._ancestor_at[:, leaves]  # (L, N_leaf): column k is leaf k's path
        order = torch.arange(len(leaves))
        for lv in range(self.num_levels - 1, -1, -1):  # stable sorts, last key first
            order = order[torch.argsort(paths[lv, order], stable=True)]
        pos = torch.zeros(self.num_nodes, 2, dtype=torch.float64)  # (N, 2)
        pos[leaves[order], 0] = torch.arange(len(leaves), dtype=torch.float64)
        pos[:, 1] = self._level_of.neg().double()  # integer negation: no -0.0
        for lv in range(self.num_levels - 2, -1, -1):
            kids = self.nodes_at(lv + 1)  # (C_{l+1},)
            total = torch.zeros(self.num_nodes, dtype=torch.float64).index_add_(
                0, self._parent[kids], pos[kids, 0])  # (N,)
            count = torch.bincount(self._parent[kids], minlength=self.num_nodes)  # (N,)
            nodes = self.nodes_at(lv)
            pos[nodes, 0] = total[nodes] / count[nodes].clamp(min=1)
        return pos

    def relations(self, node: int) -> list[str]:
        """How every node relates to ``node``: ``N`` strings in node order.

        Each is ``"label"`` (``node`` itself), ``"ancestor"``, ``"descendant"``,
        ``"sibling"`` (the same parent; all roots are siblings of each other) or
        ``"elsewhere"``.

        Raises:
            LabelTreeError: ``node`` is not a node index of the tree.
        """
        node = self._check_node(node, "relations: node")
        up = set(self.ancestors(node).tolist())
        down = set(self.descendants(node).tolist())
        parent = self._parent.tolist()
        out = []
        for j in range(self.num_nodes):
            if j == node:
                out.append("label")
            elif j in up:
                out.append("ancestor")
            elif j in down:
                out.append("descendant")
            elif parent[j] == parent[node]:
                out.append("sibling")
            else:
                out.append("elsewhere")
        return out

    # --------------------------------------------------------------- dunder
    def __len__(self) -> int:
        return self.num_nodes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelTree):
            return NotImplemented
        return (
            self.level_names == other.level_names
            and self._names == other._names
            and torch.equal(self._parent, other._parent)
        )

    def __hash__(self) -> int:
        # read-only, so hashable; equal trees (same levels, names, parents) hash alike
        return hash((self._level_names, self._names, tuple(self._parent.tolist())))

    def __repr__(self) -> str:
        sizes = zip(self.level_names, self.level_sizes, strict=True)
        levels = ", ".join(f"{n}={s}" for n, s in sizes)
        return f"LabelTree({levels}; {self.num_nodes} nodes, {self.num_nodes + 1} legal states)"
