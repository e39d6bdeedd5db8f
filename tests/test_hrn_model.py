"""HRN: the official sizes, shapes, the residual fusion and its ablations; backbones."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch

from hmglib import LabelTree, hierarchies
from hmglib.models import HRN, build_backbone
from hmglib.models.backbones import SmallCNN

TREE = LabelTree.from_paths(
    [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")],
    ["top", "mid", "leaf"],
)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet50_cub_matches_official_parameter_count() -> None:
    model = HRN(hierarchies.load("cub200"), backbone="resnet50")
    # the official model has 94.6 M with 38 families; ours has 37 (one head row less)
    assert n_params(model) == pytest.approx(94.6e6, rel=0.01)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 448, 448))
    assert [t.shape for t in out.level_logits] == [(2, 13), (2, 37), (2, 200)]
    assert out.leaf_logits.shape == (2, 200)
    assert out.node_logits.shape == (2, 250)
    assert out.energies().min() >= 0 and out.energies().max() <= 1
    torch.testing.assert_close(out.energies("identity"), out.node_logits)


@pytest.mark.parametrize(("name", "millions"), [("aircraft", 94.5), ("cars", 70.9)])
def test_other_trees_match_official_counts(name: str, millions: float) -> None:
    model = HRN(hierarchies.load(name), backbone="resnet50")
    assert n_params(model) == pytest.approx(millions * 1e6, rel=0.01)


def small(**kw) -> HRN:
    torch.manual_seed(0)
    return HRN(TREE, backbone=SmallCNN(width=4), feature_dim=6, **kw).eval()


def test_residual_fusion_by_hand() -> None:
    model = small()
    x = torch.rand(3, 3, 16, 16)
    fmap = model.backbone(x)
    f = [b(fmap) for b in model.blocks]
    h = model.level_features(fmap)
    assert torch.allclose(h[0], torch.relu(f[0]))
    assert torch.allclose(h[1], torch.relu(f[0] + f[1]))
    assert torch.allclose(h[2], torch.relu(f[0] + f[1] + f[2]))
    out = model(x)
    assert torch.allclose(out.level_logits[1], model.heads[1](h[1]))
    assert torch.allclose(out.leaf_logits, model.leaf_head(h[2]))


def test_ablations() -> None:
    x = torch.rand(2, 3, 16, 16)
    no_lc = small(linear_combination=False)
    fmap = no_lc.backbone(x)
    assert torch.allclose(no_lc.level_features(fmap)[2], torch.relu(no_lc.blocks[2](fmap)))
    no_relu = small(relu=False)
    fmap = no_relu.backbone(x)
    f = [b(fmap) for b in no_relu.blocks]
    assert torch.allclose(no_relu.level_features(fmap)[1], f[0] + f[1])
    shared = small(gsb=False)
    assert len(shared.blocks) == 1 and len(small().blocks) == 3
    h = shared.level_features(shared.backbone(x))
    assert torch.allclose(h[1], torch.relu(2 * shared.blocks[0](shared.backbone(x))))


def test_gradients_reach_every_level_block() -> None:
    model = small().train()
    out = model(torch.rand(4, 3, 16, 16))
    out.leaf_logits.sum().backward()
    for block in model.blocks:  # the leaf head sees every coarser level's feature
        assert block.mlp[-1].weight.grad.abs().sum() > 0


def test_bad_trees_and_backbones() -> None:
    one_level = LabelTree.from_paths([("x",), ("y",)], ["only"])
    with pytest.raises(ValueError, match="at least 2 levels"):
        HRN(one_level, backbone=SmallCNN())
    with pytest.raises(ValueError, match=r"\.out_channels"):
        HRN(TREE, backbone=torch.nn.Identity())
    with pytest.raises(ValueError, match="unknown backbone 'resnet5'"):
        build_backbone("resnet5")
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET1K_V1' for backbone "
                                         r"'small_cnn'; choose one of \['HIERSHAPES_V1'"):
        build_backbone("small_cnn", weights="IMAGENET1K_V1")


@pytest.mark.parametrize(("name", "channels", "stride"), [
    ("resnet18", 512, 32), ("vgg19", 512, 16), ("small_cnn", 128, 8)])
def test_backbone_shapes(name: str, channels: int, stride: int) -> None:
    net = build_backbone(name).eval()
    assert net.out_channels == channels
    with torch.no_grad():
        assert net(torch.rand(1, 3, 64, 64)).shape == (1, channels, 64 // stride, 64 // stride)


def test_pretrained_offline_says_so(monkeypatch) -> None:
    import torchvision

    def offline(self, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    for weights in ("IMAGENET1K_V1", "DEFAULT", torchvision.models.ResNet18_Weights.IMAGENET1K_V1):
        with pytest.raises(RuntimeError, match=r"pretrained weights for 'resnet18'.*not in "
                                               r"torchvision's cache.*weights=None"):
            build_backbone("resnet18", weights=weights)
    with pytest.raises(RuntimeError, match="weights=None"):
        HRN(TREE, backbone="resnet18", weights="IMAGENET1K_V1")


def test_bn_momentum_is_the_official_one_by_default() -> None:
    assert small().blocks[0].conv[1].momentum == 0.01
    assert small(bn_momentum=0.1).blocks[2].conv[4].momentum == 0.1


@pytest.mark.parametrize(("images", "error", "message"), [
    (torch.rand(3, 16, 16), ValueError,
     r"one image without a batch dimension: add one with images\.unsqueeze\(0\)"),
    (torch.rand(2, 2, 3, 16, 16), ValueError,
     r"5-D with shape \(2, 2, 3, 16, 16\): flatten the leading dimensions with "
     r"images\.flatten\(0, 1\)"),
    (torch.rand(16, 16), ValueError, r"2-D with shape \(16, 16\): reshape images"),
    (torch.rand(2, 1, 16, 16), ValueError,
     r"dimension 1 holds the 3 channels its backbone takes; images has shape "
     r"\(2, 1, 16, 16\); grey images .*"
     r"images\.expand\(-1, 3, -1, -1\)"),
    (torch.rand(2, 16, 16, 3), ValueError, r"shape \(2, 16, 16, 3\); channels-last .*"
                                           r"images\.permute\(0, 3, 1, 2\)"),
    (torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8), TypeError,
     r"got images of dtype torch\.uint8 and shape \(2, 3, 16, 16\); convert with "
     r"images\.float\(\) / 255 and normalise"),
    ([torch.rand(3, 16, 16)], TypeError, r"got list; stack the images with torch\.stack"),
], ids=["no-batch-dim", "5d", "2d", "grey", "channels-last", "uint8", "list"])
def test_bad_images_say_how_to_fix_them(images, error, message) -> None:
    model = small()
    with pytest.raises(error, match=message):
        model(images)


def test_channel_check_follows_the_backbone() -> None:
    class GreyNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.out_channels = 4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    model = HRN(TREE, backbone=GreyNet(), feature_dim=6).eval()
    assert model.in_channels == 1 and small().in_channels == 3
    assert model(torch.rand(2, 1, 8, 8)).leaf_logits.shape == (2, 4)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\): dimension 1 holds the 1 channels"):
        model(torch.rand(2, 3, 8, 8))
