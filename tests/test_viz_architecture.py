"""The HRN architecture diagram: a Figure whose shapes are those of a forward
pass, drawn without changing the model, and clear errors for bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from hmglib import LabelTree, viz
from hmglib.models import get_model
from hmglib.models.backbones import SmallCNN
from hmglib.viz.architecture import draw_hrn_architecture
from hmglib.viz.page import PAGE_WIDTH_IN

PATHS = [("b", "y", "1"), ("a", "x", "2"), ("b", "z", "3"), ("b", "y", "4"), ("a", "x", "5")]


@pytest.fixture
def tree() -> LabelTree:
    return LabelTree.from_paths(PATHS, ["top", "mid", "leaf"])


def _hrn(tree: LabelTree, **switches):
    torch.manual_seed(0)
    return get_model("hrn", tree, backbone=SmallCNN(width=4), feature_dim=6, **switches)


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text().strip()]


def test_exported_from_viz() -> None:
    assert viz.draw_hrn_architecture is draw_hrn_architecture
    assert "draw_hrn_architecture" in viz.__all__


@pytest.mark.parametrize("size", [32, (24, 40)])
def test_the_shapes_on_the_figure_are_those_of_a_forward_pass(tree, size) -> None:
    model = _hrn(tree).eval()
    fig = draw_hrn_architecture(model, size, backbone_name="small CNN")
    assert isinstance(fig, Figure)
    assert fig.get_figwidth() <= PAGE_WIDTH_IN
    h, w = (size, size) if isinstance(size, int) else size
    with torch.no_grad():
        x = torch.zeros(2, 3, h, w)
        fmap = model.backbone(x)
        g = [block(fmap) for block in model.blocks]
        out = model(x)

    def shape(t: torch.Tensor) -> str:
        return " × ".join(str(s) for s in t.shape[1:])

    texts = _texts(fig)
    joined = "\n".join(texts)
    assert f"image $x$: 3 × {h} × {w}" in texts
    assert "backbone\nsmall CNN" in texts
    assert rf"$\mathbf{{M}}$: {shape(fmap)}" in texts
    for k, (gk, hk, logits) in enumerate(zip(g, out.features, out.level_logits, strict=True)):
        assert rf"$\mathbf{{g}}_{{{k + 1}}}$: {shape(gk)}" in texts
        assert rf"$\mathbf{{h}}_{{{k + 1}}}$: {shape(hk)}" in texts
        assert f"linear {hk.shape[1]} → {logits.shape[1]}\nsigmoid" in texts
    leaf = out.leaf_logits.shape[1]
    assert f"linear {out.features[-1].shape[1]} → {leaf}\nsoftmax" in texts
    assert f"{tree.num_nodes} node energies" in joined
    assert f"{leaf} leaf scores" in joined
    # inside a GSB: C -> C/2 -> C channels at the map's size, pooled to C, MLP 2D -> D
    c, mh, mw = fmap.shape[1:]
    assert f"{c // 2} × {mh} × {mw}" in joined
    assert f"→ {2 * g[0].shape[1]} → linear → {g[0].shape[1]}" in joined


def test_the_model_is_left_as_it_was(tree) -> None:
    model = _hrn(tree).train()
    model.blocks[1].eval()  # a mixed state, restored module by module
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    draw_hrn_architecture(model, 32)
    assert [m.training for m in model.modules()] == modes
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics too
    assert all(p.grad is None for p in model.parameters())


def test_the_drawing_follows_the_switches(tree) -> None:
    full = _texts(draw_hrn_architecture(_hrn(tree), 32))
    assert full.count("ReLU") == 3 and full.count("+") == 3
    assert sum(t.startswith("GSB") for t in full) == 3
    shared = _texts(draw_hrn_architecture(_hrn(tree, gsb=False), 32))
    assert any(t.startswith("one shared block") for t in shared)
    assert not any(t.startswith("GSB") for t in shared)
    plain = _texts(draw_hrn_architecture(_hrn(tree, linear_combination=False, relu=False), 32))
    assert "ReLU" not in plain and "+" not in plain
    assert any(t.startswith(r"$\mathbf{g}_{1}$ = $\mathbf{h}_{1}$") for t in plain)


def test_a_plain_sequential_backbone_is_called_backbone(tree) -> None:
    body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1))
    body.out_channels = 8
    model = get_model("hrn", tree, backbone=body, feature_dim=4)
    texts = _texts(draw_hrn_architecture(model, 16))
    assert "backbone\nbackbone" in texts
    assert r"$\mathbf{M}$: 8 × 4 × 4" in texts


def test_numpy_sizes_are_sizes(tree) -> None:
    texts = _texts(draw_hrn_architecture(_hrn(tree), np.int64(32)))
    assert "image $x$: 3 × 32 × 32" in texts
    texts = _texts(draw_hrn_architecture(_hrn(tree), (np.int32(16), 24)))
    assert "image $x$: 3 × 16 × 24" in texts


def test_bad_inputs_raise_clear_errors(tree) -> None:
    model = _hrn(tree)
    with pytest.raises(TypeError, match="get_model"):
        draw_hrn_architecture(SmallCNN(width=4), 32)
    with pytest.raises(TypeError, match="image_size"):
        draw_hrn_architecture(model, "448")
    with pytest.raises(TypeError, match="image_size"):
        draw_hrn_architecture(model, True)
    with pytest.raises(TypeError, match="image_size"):
        draw_hrn_architecture(model, (32, 32, 3))
    with pytest.raises(ValueError, match="positive"):
        draw_hrn_architecture(model, 0)
    with pytest.raises(ValueError, match="larger image_size"):
        draw_hrn_architecture(model, 4)  # the small CNN halves the side three times
    with pytest.raises(TypeError, match="backbone_name"):
        draw_hrn_architecture(model, 32, backbone_name=50)
    with pytest.raises(TypeError, match="title"):
        draw_hrn_architecture(model, 32, title=["HRN"])
