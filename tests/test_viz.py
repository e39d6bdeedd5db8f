"""Figures: the package's layout, the tree figures, the argument order, widgets."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from hmglib import LabelTree, LabelTreeError, viz

PATHS = [("b", "y", "1"), ("a", "x", "2"), ("b", "z", "3"), ("b", "y", "4"), ("a", "x", "5")]
SUBMODULES = ["architecture", "blending", "cams", "colors", "crops", "curves", "data", "page",
              "probabilities", "protocols", "trees"]


@pytest.fixture
def tree() -> LabelTree:
    return LabelTree.from_paths(PATHS, ["top", "mid", "leaf"])


# ------------------------------------------------------------------ package
def test_the_public_submodules_are_the_ideas() -> None:
    found = sorted(m.name for m in pkgutil.iter_modules(viz.__path__) if not m.name.startswith("_"))
    assert found == SUBMODULES


def test_every_exported_name_lives_in_one_submodule() -> None:
    modules = {name: importlib.import_module(f"hmglib.viz.{name}") for name in SUBMODULES}
    assert len(viz.__all__) == len(set(viz.__all__))
    for name in viz.__all__:
        homes = [m for m in modules.values() if name in m.__all__]
        assert len(homes) == 1, f"{name} is in the __all__ of {len(homes)} submodules"
        obj = getattr(viz, name)
        assert obj is getattr(homes[0], name)
        if name.isupper():  # the shared palettes, the page's measures
            assert homes[0] in (modules["colors"], modules["page"])
        else:
            assert callable(obj) and obj.__module__ == homes[0].__name__
            assert obj.__doc__, f"{name} has no docstring"
    for module in modules.values():
        assert module.__doc__
        assert set(module.__all__) <= set(viz.__all__), module.__name__
    figures = [n for n in viz.__all__ if n.startswith("draw_")]
    assert len(figures) >= 19


def test_no_module_imports_a_private_name() -> None:
    root = Path(viz.__file__).parent
    for path in [*root.glob("*.py"), root.parent / "widgets.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hmglib"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


def test_the_old_tree_helpers_are_gone() -> None:
    assert not hasattr(viz, "tree_layout") and not hasattr(viz, "node_relations")


# -------------------------------------------------------------------- trees
def test_draw_tree_puts_the_nodes_at_the_layout(tree: LabelTree) -> None:
    fig = viz.draw_tree(tree, highlight={0: "red", 2: "red"}, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert set(tree.names) <= texts
    dots = np.concatenate([c.get_offsets() for c in ax.collections])  # one per node
    assert np.array_equal(dots, tree.layout().numpy())
    summary = viz.draw_tree_summary(tree)
    assert len(summary.axes) == 2  # nodes per level, and branching


def test_legal_states_image(tree: LabelTree) -> None:
    fig = viz.draw_legal_states(tree, rows=[0, 6])
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (tree.num_nodes + 1, tree.num_nodes)
    assert image[0].sum() == 0 and image[6].sum() == 3 and image[3].sum() == 2 * 0.25


def test_level_sizes_and_node_view(tree: LabelTree) -> None:
    fig = viz.draw_level_sizes({"toy": tree, "again": tree})
    assert len(fig.axes) == 2
    assert [p.get_height() for p in fig.axes[0].patches] == [2, 3, 5]
    fig = viz.draw_node_view(tree, tree.index("b"))
    assert len(fig.axes) == 2
    # b, its children y and z and their leaves 1, 3, 4: six states with b true
    assert fig.axes[1].get_title() == "the 6 legal states with 'b' true"
    with pytest.raises(LabelTreeError, match="outside the tree"):
        viz.draw_node_view(tree, tree.num_nodes)


# ----------------------------------------------------------- argument order
def test_data_first_then_the_tree(tree: LabelTree) -> None:
    p = torch.linspace(0, 1, tree.num_nodes)
    fig = viz.draw_marginals(p, tree, energies=torch.zeros(tree.num_nodes))
    assert len(fig.axes) == 2  # the tree and its colour bar
    fig = viz.draw_label_gradient(p - 0.5, tree, tree.index("y"))
    bars = [b.get_height() for b in fig.axes[1].patches]
    assert bars == pytest.approx((0.5 - p).tolist())  # the figure shows -grad
    with pytest.raises(TypeError, match=r"draw_marginals\(marginals, tree"):
        viz.draw_marginals(tree, p)
    with pytest.raises(TypeError, match=r"draw_label_gradient\(grad, tree, node"):
        viz.draw_label_gradient(tree, p, 2)
    with pytest.raises(ValueError, match=r"marginals has shape \(3,\); give one value per node"):
        viz.draw_marginals(p[:3], tree)
    with pytest.raises(ValueError, match=r"state_probs has shape \(10,\); give one probability "
                                         r"per legal state, shape \(11,\)"):
        viz.draw_marginals(p, tree, state_probs=p)
    with pytest.raises(LabelTreeError, match="relations: node"):
        viz.draw_label_gradient(p, tree, tree.num_nodes)


# ------------------------------------------------------------------ widgets
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
    import ipywidgets as w

    from hmglib.widgets import marginals_explorer

    box = marginals_explorer(torch.zeros(tree.num_nodes), tree)
    columns, image = box.children
    assert isinstance(image, w.Image)
    sliders = [s for column in columns.children for s in column.children]
    assert len(sliders) == tree.num_nodes and len(columns.children) == tree.num_levels
    before = bytes(image.value)
    sliders[0].value = 2.0
    assert bytes(image.value) != before
    with pytest.raises(TypeError, match=r"marginals_explorer\(energies, tree"):
        marginals_explorer(tree, torch.zeros(tree.num_nodes))
    with pytest.raises(ValueError, match="one energy per node"):
        marginals_explorer(torch.zeros(tree.num_nodes + 1), tree)
    with pytest.raises(ValueError, match="within"):
        marginals_explorer(torch.full((tree.num_nodes,), 9.0), tree)


# ------------------------------------------- large trees, scenarios, explorer
def test_a_large_tree_is_drawn_as_bands_that_tile_each_level() -> None:
    from matplotlib.patches import Rectangle

    big = LabelTree.from_paths(
        [(f"r{i % 3}", f"m{i % 9}", f"l{i}") for i in range(81)], ["root", "mid", "leaf"])
    for fig in (viz.draw_tree(big, title="t"), viz.draw_tree_icicle(big)):
        bands = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
        assert len(bands) == big.num_nodes  # every node, not a summary
        for lv in range(big.num_levels):
            row = [b for b in bands if np.isclose(b.get_y(), bands[big.offset(lv)].get_y())]
            assert sum(b.get_width() for b in row) == pytest.approx(len(big.leaves))
        widths = sorted(b.get_width() for b in bands)
        assert widths[-1] == 27 and widths[0] == 1  # a root's 27 leaves; a leaf
    assert viz.draw_tree(big, title="t").axes[0].get_title() == "t"
    with pytest.raises(ValueError, match="raise max_nodes"):
        viz.draw_tree(big, highlight={0: "red"})


def test_energy_scenarios_show_each_scenario_s_marginals(tree: LabelTree) -> None:
    from hmglib import probability as prob

    f = torch.linspace(-1, 1, tree.num_nodes, dtype=torch.float64)
    raised = f.clone()
    raised[tree.index("x")] += 2
    fig = viz.draw_energy_scenarios({"start": f, "x raised": raised}, tree, title="t")
    names_ax, first, second = fig.axes
    want = prob.log_marginals(raised[None], tree)[0].exp()
    got = [b.get_width() for b in second.patches]  # the empty state, then the nodes
    p_empty = float(torch.exp(-prob.log_partition(raised[None], tree)[0]))
    assert got[0] == pytest.approx(p_empty)
    assert sorted(got[1:]) == pytest.approx(sorted(want.tolist()))
    hatched = [b for b in second.patches if b.get_hatch()]
    assert len(hatched) == 1 and not [b for b in first.patches if b.get_hatch()]
    assert "x +2.0" in second.get_title(loc="left")
    with pytest.raises(TypeError, match=r"draw_energy_scenarios\(energies, tree"):
        viz.draw_energy_scenarios(tree, {"a": f})
    with pytest.raises(TypeError, match="mapping from scenario name"):
        viz.draw_energy_scenarios(f, tree)
    with pytest.raises(ValueError, match="give 1 to"):
        viz.draw_energy_scenarios({}, tree)
    with pytest.raises(ValueError, match=r"energies\['bad'\] has shape"):
        viz.draw_energy_scenarios({"bad": f[:3]}, tree)
    with pytest.raises(ValueError, match="not finite"):
        viz.draw_energy_scenarios({"nan": f * float("nan")}, tree)


def test_scenario_explorer_loads_presets_into_its_sliders(tree: LabelTree) -> None:
    import ipywidgets as w

    from hmglib.widgets import scenario_explorer

    f = torch.zeros(tree.num_nodes)
    down = f - 2
    box = scenario_explorer(f, tree, scenarios={"all down": down})
    pick, columns, image = box.children
    assert isinstance(image, w.Image) and bytes(image.value).startswith(b"\x89PNG")
    sliders = [s for column in columns.children for s in column.children]
    assert len(sliders) == tree.num_nodes and len(columns.children) == tree.num_levels
    before = bytes(image.value)
    pick.value = "all down"
    assert all(s.value == -2.0 for s in sliders) and bytes(image.value) != before
    sliders[0].value = 1.0
    pick.value = "the reference"
    assert all(s.value == 0.0 for s in sliders)
    with pytest.raises(TypeError, match=r"scenario_explorer\(energies, tree"):
        scenario_explorer(tree, f)
    with pytest.raises(TypeError, match="scenarios must be a mapping"):
        scenario_explorer(f, tree, scenarios=[down])
    with pytest.raises(ValueError, match=r"scenarios\['far'\] must be finite and within"):
        scenario_explorer(f, tree, scenarios={"far": f + 9})
    with pytest.raises(ValueError, match="one energy per node"):
        scenario_explorer(f[:2], tree)
