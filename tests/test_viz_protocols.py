"""Label protocols drawn (hmglib.viz.protocols): the relabelling schematic."""

from __future__ import annotations

import pytest
import torch
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from hmglib import LabelTree, viz
from hmglib.data import coarsen_labels


def _squares(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


@pytest.mark.parametrize("n", [1, 5, 7, 10, 30])
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 0.7, 0.9, 1.0])
def test_kept_per_class_is_the_rule_of_coarsen_labels(n: int, ratio: float) -> None:
    tree = LabelTree.from_paths([("f", "s"), ("f", "t")], ["family", "species"])
    targets = torch.tensor([tree.index("s")] * n + [tree.index("t")] * n)
    labels = coarsen_labels(targets, tree, ratio, rule="ordered")
    kept = int((labels[:n] == tree.index("s")).sum())
    assert viz.kept_per_class(n, ratio) == kept


def test_one_square_per_image_the_first_keep_the_species_colour() -> None:
    species = {"a": "F", "b": "F", "c": "G"}
    fig = viz.draw_relabel_protocol([0.3, 0.7], [10, 7, 5], species)
    assert len(fig.axes) == 2
    fine, coarse = to_hex(viz.level_color(2)), to_hex(viz.level_color(1))
    for ax, ratio in zip(fig.axes, (0.3, 0.7), strict=True):
        squares = _squares(ax)
        assert len(squares) == 10 + 7 + 5
        colours = [to_hex(s.get_facecolor()) for s in squares]
        assert colours.count(fine) == sum(viz.kept_per_class(n, ratio) for n in (10, 7, 5))
        assert set(colours) <= {fine, coarse}
        # every row ends with "kept/n"
        counts = sorted(t.get_text() for t in ax.texts)
        assert counts == sorted(f"{viz.kept_per_class(n, ratio)}/{n}" for n in (10, 7, 5))
    first = fig.axes[0]
    rows = sorted(zip(first.get_yticks(), (t.get_text() for t in first.get_yticklabels()),
                      strict=True))
    assert [label for _, label in rows] == ["c\n(G)", "b\n(F)", "a\n(F)"]  # a on top
    assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN
    assert not viz.unreadable_text(fig, min_pt=9)  # 9 pt as shown on the page


def test_degraded_images_are_hatched() -> None:
    fig = viz.draw_relabel_protocol(0.5, 4, degrade=True)
    hatched = [s for s in _squares(fig.axes[0]) if s.get_hatch()]
    assert len(hatched) == 3 * 2  # three default species, two of four relabelled each
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["keeps the species label", "family label, degraded ×0.25"]


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"ratio 1.5 must be in \[0, 1\]"):
        viz.draw_relabel_protocol(1.5)
    with pytest.raises(ValueError, match="at least one ratio"):
        viz.draw_relabel_protocol([])
    with pytest.raises(ValueError, match="species is empty"):
        viz.draw_relabel_protocol(0.5, species={})
    with pytest.raises(ValueError, match="2 counts for 3 species"):
        viz.draw_relabel_protocol(0.5, [3, 4])
    with pytest.raises(ValueError, match=">= 1 for every species"):
        viz.draw_relabel_protocol(0.5, 0)
    with pytest.raises(ValueError, match="samples=0 must be a whole number >= 1"):
        viz.kept_per_class(0, 0.5)
    with pytest.raises(ValueError, match=r"ratio=-0.1 must be in \[0, 1\]"):
        viz.kept_per_class(10, -0.1)
