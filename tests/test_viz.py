"""Figures: each returns a Figure, the layout is sound, widgets build."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from hmglib import LabelTree, viz

PATHS = [("b", "y", "1"), ("a", "x", "2"), ("b", "z", "3"), ("b", "y", "4"), ("a", "x", "5")]


@pytest.fixture
def tree() -> LabelTree:
    return LabelTree.from_paths(PATHS, ["top", "mid", "leaf"])


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_layout_centres_parents_and_keeps_siblings_together(tree: LabelTree) -> None:
    pos = viz.tree_layout(tree)
    assert pos.shape == (tree.num_nodes, 2)
    assert np.array_equal(pos[:, 1], -tree.level_of.numpy())
    for node in range(tree.num_nodes):
        kids = tree.children(node).numpy()
        if len(kids):
            assert pos[node, 0] == pytest.approx(pos[kids, 0].mean())
    # leaves of one parent are adjacent: no crossing edges
    for node in tree.nodes_at("mid").tolist():
        xs = sorted(pos[tree.children(node).numpy(), 0])
        assert xs == list(np.arange(xs[0], xs[0] + len(xs)))


def test_draw_tree_small_and_large(tree: LabelTree) -> None:
    fig = viz.draw_tree(tree, highlight={0: "red", 2: "red"}, title="t")
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(tree.names) <= texts
    big = LabelTree.from_paths([(f"r{i % 3}", f"l{i}") for i in range(80)], ["root", "leaf"])
    summary = viz.draw_tree(big)
    assert len(summary.axes) == 2  # the per-level summary, not 83 unreadable labels


def test_legal_states_image(tree: LabelTree) -> None:
    fig = viz.draw_legal_states(tree, rows=[0, 6])
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (tree.num_nodes + 1, tree.num_nodes)
    assert image[0].sum() == 0 and image[6].sum() == 3 and image[3].sum() == 2 * 0.25


def test_level_sizes_and_node_view(tree: LabelTree) -> None:
    fig = viz.draw_level_sizes({"toy": tree, "again": tree})
    assert len(fig.axes) == 2
    fig = viz.draw_node_view(tree, tree.index("b"))
    assert len(fig.axes) == 2


def test_tree_explorer_redraws_its_image(tree: LabelTree) -> None:
    import ipywidgets as w

    from hmglib.widgets import tree_explorer

    box = tree_explorer(tree, node=tree.index("x"))
    pick, image = box.children
    assert pick.value == tree.index("x")
    # an Image, not an Output: headless execution must not mirror outputs back
    assert isinstance(image, w.Image) and bytes(image.value).startswith(b"\x89PNG")
    before = bytes(image.value)
    pick.value = tree.index("3")
    assert bytes(image.value) != before
    with pytest.raises(ValueError, match="not a node of the tree"):
        tree_explorer(tree, node=tree.num_nodes)


def test_marginals_explorer_follows_its_sliders(tree: LabelTree) -> None:
    import torch

    from hmglib.widgets import marginals_explorer

    box = marginals_explorer(tree, torch.zeros(tree.num_nodes))
    columns, image = box.children
    sliders = [s for column in columns.children for s in column.children]
    assert len(sliders) == tree.num_nodes and len(columns.children) == tree.num_levels
    before = bytes(image.value)
    sliders[0].value = 2.0
    assert bytes(image.value) != before
    with pytest.raises(ValueError, match="one energy per node"):
        marginals_explorer(tree, torch.zeros(tree.num_nodes + 1))
    with pytest.raises(ValueError, match="within"):
        marginals_explorer(tree, torch.full((tree.num_nodes,), 9.0))


def test_grouped_bars() -> None:
    rows = [{"level": lv, "config": c, "ratio": r, "value": v}
            for r in (0, 0.7) for c, v in (("HRN", 80), ("no LC", 60)) for lv in ("a", "b")]
    fig = viz.draw_grouped_bars(rows, x="level", hue="config", panel="ratio",
                                chance={"a": 33.3})
    assert len(fig.axes) == 2
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == [60, 60, 80, 80]


def test_grouped_bars_mark_a_level_on_single_bars() -> None:
    table = [{"k": k, "start": st, "value": v} for k, st, v in
             [(1, "a", 30.0), (1, "b", 8.0), (2, "a", 40.0), (2, "b", 11.0)]]
    fig = viz.draw_grouped_bars(table, x="k", hue="start", marks={(1, "a"): 15.0, (2, "b"): 5.0},
                                marks_label="family / 3")
    dotted = [line for line in fig.axes[0].lines if line.get_linestyle() == ":"]
    assert sorted(float(line.get_ydata()[0]) for line in dotted) == [5.0, 15.0]
    assert [line.get_label() for line in dotted].count("family / 3") == 1  # one legend entry
