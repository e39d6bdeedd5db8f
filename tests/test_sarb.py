"""SARB: the partial BCE and the contrastive loss, the blends (ILRB, PLRB), the
prototypes, the semantic decoupling and the gated graph, the model, and its
training schedule (fit_sarb), with the recipes' backbone freezing and transforms."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import TensorDataset

from hmglib import engine
from hmglib.blending import SARBFit, fit_sarb, positive_features
from hmglib.checks import check_partial_labels
from hmglib.data import MultiShapes, drop_labels, empirical_cooccurrence
from hmglib.losses import (
    SARB_TERMS,
    MultiLabelLossOutput,
    PartialBCELoss,
    SARBLoss,
    get_loss,
    partial_bce,
    prototype_contrastive_loss,
)
from hmglib.models import build_backbone
from hmglib.models import sarb as sarb_module
from hmglib.models.backbones import SmallCNN
from hmglib.models.sarb import (
    SARB,
    GatedGNN,
    LinearMultiLabel,
    MultiLabelOutput,
    SemanticDecoupling,
    blend_partners,
    compute_prototypes,
    instance_blend,
    prototype_blend,
    prototypes_from_positives,
)
from hmglib.recipes import (
    SARB_RECIPES,
    SARBRecipe,
    freeze_backbone,
    sarb_optimizer,
    sarb_transforms,
)

F64 = torch.float64

# the hand-made batch of the blend rules: B = 3 images, C = 4 classes, D = 2
TARGETS = torch.tensor([[1, 0, -1, 0], [0, 1, 0, -1], [-1, 0, 1, 1]])
# f[n, c] = (10 n + c, 100 + 10 n + c)
FEATURES = torch.tensor([[[10.0 * n + c, 100.0 + 10 * n + c] for c in range(4)]
                         for n in range(3)], dtype=F64)  # (3, 4, 2)


def stub_backbone(channels: int) -> nn.Module:
    """A backbone that passes a ``(B, channels, h, w)`` feature map through unchanged."""
    module = nn.Identity()
    module.out_channels = channels
    return module


def tiny_sarb(num_classes: int = 4, channels: int = 5, seed: int = 0, **kw) -> SARB:
    """A SARB on a stub backbone: fed ``(B, channels, h, w)`` maps directly, no pool."""
    torch.manual_seed(seed)
    options = dict(feature_dim=6, hidden=4, embed_dim=3, pool=False, num_prototypes=3)
    return SARB(num_classes, backbone=stub_backbone(channels), **{**options, **kw})


def fmaps(batch: int, channels: int = 5, h: int = 2, w: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, channels, h, w, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ partial_bce
def test_partial_bce_by_hand() -> None:
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [-1.0, 0.5]])
    # known: (0, 0) positive at z = 0, (1, 0) negative at z = -1, (1, 1) soft 0.5 at z = 1;
    # each softplus(z) - t z
    known = [math.log(2.0), math.log(1 + math.exp(-1.0)), math.log(1 + math.e) - 0.5]
    assert partial_bce(logits, targets).item() == pytest.approx(sum(known) / 3, rel=1e-6)
    assert sum(known) / 3 == pytest.approx(0.606557, abs=1e-6)
    # "negative": the unknown (0, 1) at z = 2 joins as a negative, softplus(2)
    negative = (sum(known) + math.log(1 + math.exp(2.0))) / 4
    assert partial_bce(logits, targets, "negative").item() == pytest.approx(negative, rel=1e-6)
    # the same as torch's BCE with t = max(target, 0) over the counted entries
    t = targets.clamp(min=0)
    bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    known_mask = targets != 0
    torch.testing.assert_close(partial_bce(logits, targets), bce[known_mask].mean())
    torch.testing.assert_close(partial_bce(logits, targets, "negative"), bce.mean())


def test_partial_bce_ignores_unknown_logits() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=g, requires_grad=True)
    targets = torch.randint(-1, 2, (5, 4), generator=g)
    targets[0, 0] = 1
    partial_bce(logits, targets).backward()
    assert torch.all(logits.grad[targets == 0] == 0)
    assert torch.all(logits.grad[targets != 0] != 0)
    moved = logits.detach().clone()
    moved[targets == 0] += 100.0  # unknown scores do not count
    torch.testing.assert_close(partial_bce(moved, targets), partial_bce(logits, targets))


def test_partial_bce_without_a_known_entry_is_zero_on_the_graph() -> None:
    logits = torch.randn(3, 2, requires_grad=True)
    loss = partial_bce(logits, torch.zeros(3, 2))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)
    # an empty batch too (a blend that reached no image)
    empty = torch.zeros(0, 2, requires_grad=True)
    assert partial_bce(empty, torch.zeros(0, 2)).item() == 0.0


def test_partial_bce_gradcheck_logits_and_soft_target() -> None:
    z = torch.tensor([[0.3, -1.2, 0.7], [1.5, 0.1, -0.4]], dtype=F64, requires_grad=True)
    t = torch.tensor(0.35, dtype=F64, requires_grad=True)
    base = torch.tensor([[1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], dtype=F64)
    soft_at = torch.zeros(2, 3, dtype=torch.bool)
    soft_at[0, 1] = True  # a soft positive where the base is unknown

    def loss(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return partial_bce(z, torch.where(soft_at, t, base))

    assert torch.autograd.gradcheck(loss, (z, t))
    assert torch.autograd.gradcheck(lambda z: partial_bce(z, base, "negative"), (z,))
    # d/dt of (softplus(z) - t z) / n with n = 5 known entries is -z / 5
    (grad_t,) = torch.autograd.grad(loss(z, t), t)
    assert grad_t.item() == pytest.approx(1.2 / 5)


@pytest.mark.parametrize(("logits", "targets", "unknown", "error", "message"), [
    (torch.zeros(2, 3), torch.zeros(2, 2), "ignore", ValueError, r"\(2, 2\).*\(2, 3\)"),
    (torch.zeros(2, 2), torch.tensor([[2.0, 0], [0, 0]]), "ignore", ValueError, r"\[2.0\]"),
    (torch.zeros(2, 2), torch.tensor([[-0.5, 0], [0, 0]]), "ignore", ValueError, r"\[-0.5\]"),
    (torch.zeros(2, 2), torch.tensor([[math.nan, 0], [0, 0]]), "ignore", ValueError,
     "soft positive"),
    (torch.tensor([[math.nan, 0.0], [0, 0]]), torch.ones(2, 2), "ignore", ValueError,
     "logits.*NaN"),
    (torch.zeros(2, 2), torch.zeros(2, 2), "x", ValueError, r"unknown must be one of.*'x'"),
    (torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2), "ignore", TypeError, "float"),
    (torch.zeros(4), torch.zeros(4), "ignore", TypeError, r"\(B, C\)"),
])
def test_partial_bce_bad_inputs(logits, targets, unknown, error, message) -> None:
    with pytest.raises(error, match=message):
        partial_bce(logits, targets, unknown)


# ------------------------------------------------------------------ contrastive loss
def brute_contrastive(features: torch.Tensor, targets: torch.Tensor) -> float:
    """The documented loss: the mean over the positive pairs plus the mean over the
    other pairs, over (class, n, m != n) with both labels known."""
    sums, counts = [0.0, 0.0], [0, 0]
    b, c, _ = features.shape
    for k in range(c):
        for n in range(b):
            for m in range(b):
                if n == m or targets[n, k] == 0 or targets[m, k] == 0:
                    continue
                u, v = features[n, k], features[m, k]
                cos = float(u @ v) / (float(u.norm()) * float(v.norm()))
                both = bool(targets[n, k] == 1 and targets[m, k] == 1)
                group = 0 if both else 1
                sums[group] += 1 - cos if both else 1 + cos
                counts[group] += 1
    return sum(t / n for t, n in zip(sums, counts, strict=True) if n)


def test_contrastive_loss_by_hand() -> None:
    f = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]], [[3.0, 0.0]]])  # (3, 1, 2)
    # positive pairs: 0 and 1 (cos 0), twice: pull mean 1; other pairs: 0 with the
    # negative 2 (cos 1): 1 + 1 twice, 1 with 2 (cos 0): 1 + 0 twice: push mean 6 / 4
    y = torch.tensor([[1], [1], [-1]])
    assert prototype_contrastive_loss(f, y).item() == pytest.approx(1 + 6 / 4)


def test_contrastive_loss_weighs_both_groups_alike() -> None:
    # one positive pair among many negative ones: the pull keeps its full weight
    f = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]] + [[[1.0, 0.0]]] * 6)  # (8, 1, 2)
    y = torch.tensor([[1], [1]] + [[-1]] * 6)
    pull = 1.0  # the two positives are orthogonal
    push = brute_contrastive(f, y) - pull
    assert prototype_contrastive_loss(f, y).item() == pytest.approx(pull + push)
    assert push > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrastive_loss_is_the_brute_force_mean(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(5, 3, 4, generator=g, dtype=F64)
    targets = torch.randint(-1, 2, (5, 3), generator=g)
    targets[:2, 0] = 1  # at least one known pair
    got = prototype_contrastive_loss(features, targets)
    assert got.item() == pytest.approx(brute_contrastive(features, targets), rel=1e-10)
    assert 0.0 <= got.item() <= 4.0
    # unknown entries take no part: their features are free
    moved = features.clone()
    moved[targets == 0] = torch.randn(int((targets == 0).sum()), 4, generator=g, dtype=F64)
    torch.testing.assert_close(prototype_contrastive_loss(moved, targets), got)
    leaf = features.clone().requires_grad_()
    prototype_contrastive_loss(leaf, targets).backward()
    assert torch.all(leaf.grad[targets == 0] == 0)
    assert torch.autograd.gradcheck(lambda f: prototype_contrastive_loss(f, targets),
                                    (features.clone().requires_grad_(),))


def test_contrastive_loss_with_only_unknowns_is_zero_on_the_graph() -> None:
    features = torch.randn(4, 3, 2, requires_grad=True)
    targets = torch.zeros(4, 3)
    targets[0] = 1  # one known image: no known pair
    loss = prototype_contrastive_loss(features, targets)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(features.grad == 0)


def test_contrastive_loss_bad_inputs() -> None:
    with pytest.raises(TypeError, match=r"\(B, C, D\)"):
        prototype_contrastive_loss(torch.zeros(3, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\(3, 5\).*\(3, 4\)"):
        prototype_contrastive_loss(torch.zeros(3, 4, 2), torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"only 1, 0 and -1.*0.5"):
        prototype_contrastive_loss(torch.zeros(3, 4, 2), torch.full((3, 4), 0.5))


# ------------------------------------------------------------------ SARBLoss
def hand_output(seed: int = 0) -> tuple[MultiLabelOutput, torch.Tensor]:
    """A SARB-like output with both blends, and its partial labels."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.tensor([[1, 0, -1], [0, 1, 1], [-1, -1, 0]])
    out = MultiLabelOutput(torch.randn(3, 3, generator=g), torch.randn(3, 3, 4, generator=g))
    out.instance_logits = torch.randn(2, 3, generator=g)
    out.instance_targets = torch.tensor([[1.0, 0.4, -1.0], [0.4, 1.0, 1.0]])
    out.prototype_logits = torch.randn(3, 3, generator=g)
    out.prototype_targets = torch.tensor([[1.0, 0.7, -1], [0.7, 1, 1], [-1, -1, 0.7]])
    return out, targets


def test_sarb_loss_sums_its_terms() -> None:
    out, y = hand_output()
    parts = SARBLoss(lam=0.1)(out, y)
    assert isinstance(parts, MultiLabelLossOutput)
    cls = partial_bce(out.logits, y)
    inst = partial_bce(out.instance_logits, out.instance_targets)
    proto = partial_bce(out.prototype_logits, out.prototype_targets)
    cst = prototype_contrastive_loss(out.features, y)
    for got, want in ((parts.cls, cls), (parts.instance, inst), (parts.prototype, proto),
                      (parts.contrastive, cst)):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(parts.total, cls + inst + proto + 0.1 * cst)
    only = SARBLoss(lam=0.1, terms=("cls", "contrastive"))(out, y)
    torch.testing.assert_close(only.total, cls + 0.1 * cst)
    torch.testing.assert_close(only.instance, inst)  # logged all the same
    negative = SARBLoss(unknown="negative")(out, y)
    torch.testing.assert_close(negative.cls, partial_bce(out.logits, y, "negative"))
    torch.testing.assert_close(negative.instance, inst)  # blends keep the partial BCE
    assert SARB_TERMS == ("cls", "instance", "prototype", "contrastive")


def test_partial_bce_loss_is_the_scores_term_alone() -> None:
    out, y = hand_output()
    parts = PartialBCELoss()(out, y)
    torch.testing.assert_close(parts.total, partial_bce(out.logits, y))
    plain = MultiLabelOutput(out.logits)  # the linear baseline: no features, no blends
    parts = SARBLoss()(plain, y)
    assert parts.instance.item() == parts.prototype.item() == parts.contrastive.item() == 0.0
    torch.testing.assert_close(parts.total, partial_bce(out.logits, y))
    neg = get_loss("partial-bce", None, unknown="negative")(out, y)
    torch.testing.assert_close(neg.total, partial_bce(out.logits, y, "negative"))


def test_get_loss_builds_the_multilabel_losses_and_refuses_bad_options() -> None:
    loss = get_loss("sarb", None, lam=0.2, terms=("cls",))
    assert isinstance(loss, SARBLoss) and loss.lam == 0.2 and loss.terms == ("cls",)
    assert isinstance(get_loss("partial-bce", None), PartialBCELoss)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['lam'\]"):
        get_loss("partial-bce", None, lam=0.1)
    with pytest.raises(ValueError, match="lam=-1"):
        SARBLoss(lam=-1)
    with pytest.raises(ValueError, match="terms"):
        SARBLoss(terms=())
    with pytest.raises(ValueError, match="terms"):
        SARBLoss(terms=("bce",))
    with pytest.raises(ValueError, match="unknown must be one of"):
        SARBLoss(unknown="x")
    with pytest.raises(TypeError, match="SARBLoss takes the model's output"):
        SARBLoss()(torch.zeros(3, 3), torch.zeros(3, 3))


# ------------------------------------------------------------------ blends
def test_instance_blend_on_the_hand_made_batch() -> None:
    alpha = torch.tensor(0.25, dtype=F64)
    blended, soft, mask = instance_blend(FEATURES, TARGETS, alpha, torch.tensor([1, 2, 0]))
    # image 0 borrows from 1: class 1 (unknown in 0, positive in 1); class 3 is negative in 1
    # image 1 borrows from 2: class 2; class 0 is negative in 2
    # image 2 borrows from 0: its only unknown, class 1, is unknown in 0 as well
    expected_mask = torch.zeros(3, 4, dtype=torch.bool)
    expected_mask[0, 1] = expected_mask[1, 2] = True
    assert torch.equal(mask, expected_mask)
    expected = FEATURES.clone()
    expected[0, 1] = torch.tensor([8.5, 108.5], dtype=F64)  # 0.25 (1, 101) + 0.75 (11, 111)
    expected[1, 2] = torch.tensor([19.5, 119.5], dtype=F64)  # 0.25 (12, 112) + 0.75 (22, 122)
    torch.testing.assert_close(blended, expected)
    torch.testing.assert_close(soft, torch.tensor([[1, 0.75, -1, 0], [0, 1, 0.75, -1],
                                                   [-1, 0, 1, 1]], dtype=F64))


def test_instance_blend_passes_gradients_to_alpha() -> None:
    alpha = torch.tensor(0.25, dtype=F64, requires_grad=True)
    blended, soft, _ = instance_blend(FEATURES, TARGETS, alpha, torch.tensor([1, 2, 0]))
    (blended.sum() + soft.sum()).backward()
    # d/d alpha: f_n - f_m summed over the two blended entries' coordinates, -1 per target
    assert alpha.grad.item() == pytest.approx((-10 - 10) * 2 - 2)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**31 - 1),
       st.floats(0.01, 0.99))
def test_instance_blend_never_changes_a_known_label(b: int, c: int, seed: int,
                                                    a: float) -> None:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(b, c, 3, generator=g, dtype=F64)
    targets = torch.randint(-1, 2, (b, c), generator=g)
    partners = blend_partners(b, g)
    blended, soft, mask = instance_blend(features, targets, torch.tensor(a, dtype=F64),
                                         partners)
    known = targets != 0
    assert torch.equal(soft[known], targets[known].to(F64))
    assert torch.equal(mask, (targets == 0) & (targets[partners] == 1))
    assert torch.equal(blended[~mask], features[~mask])
    assert torch.equal(soft[~mask], targets[~mask].to(F64))
    torch.testing.assert_close(soft[mask], torch.full_like(soft[mask], 1 - a))
    torch.testing.assert_close(blended[mask],
                               a * features[mask] + (1 - a) * features[partners][mask])


def prototypes_with_poison() -> tuple[torch.Tensor, torch.Tensor]:
    """``(C=4, K=3, D=2)`` prototypes ``p[c, k] = (1000 + 10 c + k, -(...))`` within the
    counts ``[2, 0, 1, 3]`` and 9999 in the rows beyond them."""
    counts = torch.tensor([2, 0, 1, 3])
    protos = torch.full((4, 3, 2), 9999.0, dtype=F64)
    for c in range(4):
        for k in range(int(counts[c])):
            protos[c, k] = torch.tensor([1000.0 + 10 * c + k, -(1000.0 + 10 * c + k)])
    return protos, counts


def test_prototype_blend_on_the_hand_made_batch() -> None:
    protos, counts = prototypes_with_poison()
    beta = torch.tensor(0.5, dtype=F64)
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        blended, soft, mask = prototype_blend(FEATURES, TARGETS, protos, counts, beta, g,
                                              one_per_image=False)
        # every unknown entry of a class with a prototype: (0, 3), (1, 0), (1, 2); never
        # class 1 (no prototype)
        expected_mask = torch.zeros(3, 4, dtype=torch.bool)
        expected_mask[0, 3] = expected_mask[1, 0] = expected_mask[1, 2] = True
        assert torch.equal(mask, expected_mask)
        # the paper's rule: one of them per image, (0, 3) and one of (1, 0), (1, 2)
        one = prototype_blend(FEATURES, TARGETS, protos, counts, beta,
                              torch.Generator().manual_seed(seed))[2]
        assert one.sum(1).tolist() == [1, 1, 0] and not (one & ~expected_mask).any()
        assert torch.equal(blended[~mask], FEATURES[~mask])
        expected_soft = TARGETS.to(F64).clone()
        expected_soft[mask] = 0.5
        torch.testing.assert_close(soft, expected_soft)
        for n, c in mask.nonzero().tolist():
            chosen = 2 * blended[n, c] - FEATURES[n, c]  # beta = 0.5
            allowed = protos[c, : int(counts[c])]
            assert torch.isclose(chosen, allowed).all(dim=1).any(), (seed, n, c, chosen)


def test_prototype_blend_draws_each_prototype_uniformly() -> None:
    protos, counts = prototypes_with_poison()
    features = torch.zeros(600, 4, 2, dtype=F64)
    g = torch.Generator().manual_seed(0)
    blended, _, mask = prototype_blend(features, torch.zeros(600, 4), protos, counts,
                                       torch.tensor(0.0, dtype=F64), g,
                                       one_per_image=False)  # beta 0: the prototype
    assert not mask[:, 1].any() and mask[:, [0, 2, 3]].all()
    for c in (0, 2, 3):
        k = blended[:, c, 0] - (1000 + 10 * c)  # the index of the chosen prototype
        seen = torch.bincount(k.round().long(), minlength=3)
        assert seen[int(counts[c]):].sum() == 0
        share = seen[: int(counts[c])].double() / 600
        assert torch.all((share - 1 / int(counts[c])).abs() < 0.07), (c, seen)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_prototype_blend_never_changes_a_known_label(b: int, c: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(b, c, 2, generator=g)
    targets = torch.randint(-1, 2, (b, c), generator=g)
    counts = torch.randint(0, 4, (c,), generator=g)
    protos = torch.randn(c, 3, 2, generator=g)
    blended, soft, mask = prototype_blend(features, targets, protos, counts,
                                          torch.tensor(0.3), g)
    known = targets != 0
    assert torch.equal(soft[known], targets[known].float())
    eligible = (targets == 0) & (counts > 0)[None]
    assert not (mask & ~eligible).any()
    assert torch.equal(mask.sum(1), eligible.any(1).long())  # one per image that can
    assert torch.equal(blended[~mask], features[~mask])
    torch.testing.assert_close(soft[mask], torch.full_like(soft[mask], 0.7))


def test_blend_partners_never_pair_an_image_with_itself() -> None:
    for b in range(2, 9):
        for seed in range(10):
            p = blend_partners(b, torch.Generator().manual_seed(seed))
            assert p.dtype == torch.long and p.shape == (b,)
            assert not torch.any(p == torch.arange(b))
            assert sorted(p.tolist()) == list(range(b))  # everyone lends once
    with pytest.raises(ValueError, match="a batch of 1 has no pairs"):
        blend_partners(1)
    with pytest.raises(ValueError, match="a batch of 0"):
        blend_partners(0)


def test_check_partial_labels() -> None:
    assert check_partial_labels([[1, 0, -1]], "y").shape == (1, 3)
    with pytest.raises(ValueError, match=r"y must be \(B, C\)"):
        check_partial_labels(torch.ones(3), "y")
    with pytest.raises(ValueError, match=r"y has shape \(1, 3\), expected \(2, 3\)"):
        check_partial_labels(torch.ones(1, 3), "y", (2, 3))
    with pytest.raises(ValueError, match=r"found \[2\].*drop_labels"):
        check_partial_labels(torch.tensor([[2, 0, 1]]), "y")


# ------------------------------------------------------------------ prototypes
def test_prototypes_of_scarce_duplicate_and_absent_classes() -> None:
    few = torch.tensor([[0.0, 1.0], [2.0, 3.0], [2.0, 3.0], [5.0, -1.0]])  # 3 distinct
    same = torch.tensor([[4.0, 4.0]] * 5)  # 5 copies of one feature
    none = torch.zeros(0, 2)
    protos, counts = prototypes_from_positives([few, same, none], k=4, seed=0)
    assert protos.shape == (3, 4, 2) and protos.dtype == torch.float32
    assert counts.tolist() == [3, 1, 0]
    # as many prototypes as distinct features: the features themselves, in some order
    got = sorted(map(tuple, protos[0, :3].tolist()))
    assert got == sorted({(0.0, 1.0), (2.0, 3.0), (5.0, -1.0)})
    assert torch.equal(protos[0, 3], torch.zeros(2))
    assert protos[1, 0].tolist() == [4.0, 4.0] and torch.all(protos[1, 1:] == 0)
    assert torch.all(protos[2] == 0)


@pytest.mark.parametrize("seed", [0, 7])
def test_prototypes_are_scikit_learns_kmeans_centres(seed: int) -> None:
    from sklearn.cluster import KMeans

    g = torch.Generator().manual_seed(seed)
    feats = torch.cat([torch.randn(10, 3, generator=g) + 5 * i for i in range(4)])  # (40, 3)
    protos, counts = prototypes_from_positives([feats], k=3, seed=seed)
    km = KMeans(n_clusters=3, n_init=3, random_state=seed).fit(feats.numpy())
    assert counts.tolist() == [3]
    np.testing.assert_allclose(protos[0].numpy(), km.cluster_centers_, rtol=1e-5, atol=1e-5)
    # a single prototype is the mean
    one, _ = prototypes_from_positives([feats], k=1)
    torch.testing.assert_close(one[0, 0], feats.mean(0))


def test_compute_prototypes_takes_the_known_positives() -> None:
    g = torch.Generator().manual_seed(3)
    features = torch.randn(12, 3, 2, generator=g, dtype=F64)
    targets = torch.randint(-1, 2, (12, 3), generator=g)
    targets[:, 2] = torch.where(targets[:, 2] == 1, 0, targets[:, 2])  # class 2: no positive
    per_class = [torch.stack([features[n, c] for n in range(12) if targets[n, c] == 1])
                 if (targets[:, c] == 1).any() else torch.zeros(0, 2, dtype=F64)
                 for c in range(3)]
    protos, counts = compute_prototypes(features, targets, k=2, seed=5)
    want, want_counts = prototypes_from_positives(per_class, k=2, seed=5)
    torch.testing.assert_close(protos, want)
    assert torch.equal(counts, want_counts) and counts[2] == 0


def test_prototypes_bad_inputs() -> None:
    with pytest.raises(ValueError, match="k=0 must be >= 1"):
        prototypes_from_positives([torch.zeros(2, 2)], k=0)
    with pytest.raises(ValueError, match="per_class is empty"):
        prototypes_from_positives([], k=2)
    with pytest.raises(ValueError, match="one D"):
        prototypes_from_positives([torch.zeros(2, 2), torch.zeros(2, 3)], k=2)
    with pytest.raises(ValueError, match="one D"):
        prototypes_from_positives([torch.zeros(2)], k=2)
    with pytest.raises(ValueError, match=r"\(N, C, D\)"):
        compute_prototypes(torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\(N, C, D\)"):
        compute_prototypes(torch.zeros(4, 2, 5), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="only 1"):
        compute_prototypes(torch.zeros(4, 3, 5), torch.full((4, 3), 2))


# ------------------------------------------------------------------ CSRL and graph
def test_semantic_decoupling_is_the_attention_weighted_sum() -> None:
    torch.manual_seed(0)
    sd = SemanticDecoupling(feature_dim=4, embed_dim=3, hidden=5).double()
    fmap = torch.randn(2, 4, 2, 3, dtype=F64)  # h = 2, w = 3
    emb = torch.randn(3, 3, dtype=F64)  # C = 3
    feats, att = sd(fmap, emb)
    assert feats.shape == (2, 3, 4) and att.shape == (2, 3, 2, 3)
    torch.testing.assert_close(att.sum(dim=(2, 3)), torch.ones(2, 3, dtype=F64))
    for b in range(2):
        for c in range(3):
            scores = torch.stack([
                sd.fc4(sd.fc3(torch.tanh(sd.fc1(fmap[b, :, i, j]) * sd.fc2(emb[c]))))[0]
                for i in range(2) for j in range(3)])  # position p = i * w + j
            a = torch.softmax(scores, 0)
            torch.testing.assert_close(att[b, c].flatten(), a)
            brute = sum(a[i * 3 + j] * fmap[b, :, i, j] for i in range(2) for j in range(3))
            torch.testing.assert_close(feats[b, c], brute)


def brute_ggnn(gnn: GatedGNN, features: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
    """The documented GRU update, node by node."""
    d = features.shape[-1]
    w, bias = gnn.w.weight, gnn.w.bias
    wz, wr, wh = w[:d], w[d:2 * d], w[2 * d:]
    bz, br, bh = bias[:d], bias[d:2 * d], bias[2 * d:]
    uz, ur, uh = gnn.u_zr.weight[:d], gnn.u_zr.weight[d:], gnn.u_h.weight
    h = features.clone()
    b, c, _ = features.shape
    for _ in range(gnn.steps):
        new = torch.empty_like(h)
        for n in range(b):
            for i in range(c):
                along = sum(adj[j, i] * h[n, j] for j in range(c))
                against = sum(adj[i, j] * h[n, j] for j in range(c))
                a = torch.cat([along, against])  # (2D,)
                z = torch.sigmoid(wz @ a + bz + uz @ h[n, i])
                r = torch.sigmoid(wr @ a + br + ur @ h[n, i])
                cand = torch.tanh(wh @ a + bh + uh @ (r * h[n, i]))
                new[n, i] = (1 - z) * h[n, i] + z * cand
        h = new
    return h


def test_gated_gnn_is_the_per_node_gru_update() -> None:
    torch.manual_seed(0)
    gnn = GatedGNN(dim=3, steps=2).double()
    features = torch.randn(2, 4, 3, dtype=F64)
    adj = torch.rand(4, 4, dtype=F64)  # not symmetric: both directions matter
    torch.testing.assert_close(gnn(features, adj), brute_ggnn(gnn, features, adj))
    with pytest.raises(ValueError, match="steps=0"):
        GatedGNN(3, steps=0)


def test_gated_gnn_isolated_class_evolves_alone() -> None:
    torch.manual_seed(1)
    gnn = GatedGNN(dim=4, steps=3)
    features = torch.randn(3, 5, 4)
    adj = torch.rand(5, 5)
    adj[2, :] = 0
    adj[:, 2] = 0  # class 2 never seen positive
    out = gnn(features, adj)
    assert torch.isfinite(out).all()
    alone = gnn(features[:, 2:3], torch.zeros(1, 1))  # the same node in an empty graph
    torch.testing.assert_close(out[:, 2:3], alone)
    zero = gnn(torch.zeros(2, 5, 4), torch.zeros(5, 5))
    assert torch.isfinite(zero).all()


# ------------------------------------------------------------------ the model
def test_sarb_output_shapes() -> None:
    model = tiny_sarb().eval()
    out = model(fmaps(3, h=4, w=6))
    assert isinstance(out, MultiLabelOutput)
    assert out.logits.shape == (3, 4) and out.features.shape == (3, 4, 6)
    assert out.attention.shape == (3, 4, 4, 6)
    torch.testing.assert_close(out.attention.sum(dim=(2, 3)), torch.ones(3, 4))
    torch.testing.assert_close(out.probabilities(), torch.sigmoid(out.logits))
    pooled = tiny_sarb(pool=True).eval()(fmaps(3, h=4, w=6))
    assert pooled.attention.shape == (3, 4, 2, 3)  # the extra 2 x 2 average pool
    torch.manual_seed(0)
    real = SARB(5, backbone=SmallCNN(width=4), feature_dim=8, hidden=4, embed_dim=3).eval()
    out = real(torch.rand(2, 3, 32, 32))
    assert out.logits.shape == (2, 5) and out.attention.shape == (2, 5, 2, 2)
    assert out.instance_logits is None and out.prototype_logits is None
    torch.testing.assert_close(real.classify(out.features), out.logits)


def test_sarb_blends_only_in_training_with_blending_on_and_targets() -> None:
    model = tiny_sarb()
    x, y = fmaps(2), torch.tensor([[1, 0, -1, 0], [0, 1, 1, -1]])  # 0 borrows class 1 from 1
    model.set_prototypes(torch.randn(4, 3, 6), torch.tensor([1, 2, 3, 0]))

    def blended(out: MultiLabelOutput) -> bool:
        fields = (out.instance_logits, out.instance_targets, out.prototype_logits,
                  out.prototype_targets)
        assert all(f is None for f in fields) or all(f is not None for f in fields)
        return out.instance_logits is not None

    assert not blended(model.train()(x, y))  # blending off (the default)
    model.set_blending(True)
    assert not blended(model.eval()(x, y))  # eval
    assert not blended(model.train()(x))  # no targets
    assert blended(model.train()(x, y))
    no_ilrb = tiny_sarb(ilrb=False).set_blending(True).train()
    with pytest.raises(ValueError, match="PLRB is on but no prototypes are set"):
        no_ilrb(x, y)  # prototypes never computed: refused, not skipped
    no_ilrb.set_prototypes(torch.zeros(4, 3, 6), torch.zeros(4, dtype=torch.long))
    out = no_ilrb(x, y)  # computed, but no class has a known positive: nothing to blend
    assert out.instance_logits is None and out.prototype_logits.shape == (0, 4)
    no_plrb = tiny_sarb(plrb=False).set_blending(True).train()
    no_plrb.set_prototypes(torch.randn(4, 3, 6), torch.tensor([1, 2, 3, 1]))
    out = no_plrb(x, y)
    assert out.instance_logits is not None and out.prototype_logits is None
    plain = tiny_sarb(ilrb=False, plrb=False).set_blending(True).train()
    out = plain(x, y)
    assert out.instance_logits is None and out.prototype_logits is None
    with pytest.raises(ValueError, match=r"SARB: targets has shape \(2, 3\)"):
        model.train()(x, y[:, :3])


def test_images_without_an_unknown_label_are_left_out_of_the_blends(monkeypatch) -> None:
    seen: dict[str, tuple] = {}

    def spy(name: str):
        real = getattr(sarb_module, name)

        def call(*args, **kwargs):
            seen[name] = real(*args, **kwargs)
            return seen[name]

        return call

    monkeypatch.setattr(sarb_module, "blend_partners",
                        lambda b, generator=None, device=None: torch.tensor([1, 2, 3, 0]))
    monkeypatch.setattr(sarb_module, "instance_blend", spy("instance_blend"))
    monkeypatch.setattr(sarb_module, "prototype_blend", spy("prototype_blend"))
    model = tiny_sarb().set_blending(True).train()
    model.set_prototypes(torch.randn(4, 3, 6), torch.tensor([2, 0, 3, 1]))
    y = torch.tensor([[1, -1, 1, -1],  # nothing unknown: never blended
                      [0, 1, 0, -1],  # borrows 0 and 2 from image 2; prototypes for 0, 2
                      [1, 0, 1, 1],  # borrows nothing from 3; class 1 has no prototype
                      [0, -1, -1, 0]])  # borrows class 0 from image 0; prototypes for 0, 3
    out = model(fmaps(4), y)
    _, _, inst_mask = seen["instance_blend"]
    assert inst_mask.any(1).tolist() == [False, True, False, True]
    blended, soft, _ = seen["instance_blend"]
    torch.testing.assert_close(out.instance_logits, model.classify(blended[[1, 3]]))
    torch.testing.assert_close(out.instance_targets, soft[[1, 3]])
    assert out.instance_targets.tolist() == [[0.5, 1.0, 0.5, -1.0], [0.5, -1.0, -1.0, 0.0]]
    blended, soft, proto_mask = seen["prototype_blend"]
    assert proto_mask.any(1).tolist() == [False, True, False, True]
    torch.testing.assert_close(out.prototype_logits, model.classify(blended[[1, 3]]))
    torch.testing.assert_close(out.prototype_targets, soft[[1, 3]])
    # a batch whose labels are all known blends nothing and still gives a finite loss
    full = model(fmaps(4), torch.tensor([[1, -1, 1, -1]] * 4))
    assert full.instance_logits.shape == (0, 4) and full.prototype_logits.shape == (0, 4)
    loss = SARBLoss()(full, torch.tensor([[1, -1, 1, -1]] * 4))
    assert loss.instance.item() == 0.0 and torch.isfinite(loss.total)
    loss.total.backward()


def test_alpha_and_beta_learn_only_when_asked() -> None:
    x, y = fmaps(2), torch.tensor([[1, 0, -1, 0], [0, 1, 1, -1]])
    for learn in (True, False):
        model = tiny_sarb(learn_blend=learn).set_blending(True).train()
        model.set_prototypes(torch.randn(4, 3, 6), torch.tensor([1, 2, 3, 2]))
        assert model.alpha.item() == model.beta.item() == 0.5
        opt, _ = sarb_optimizer(model, dataclasses.replace(SARB_RECIPES["synthetic"], lr=0.1))
        for _ in range(3):
            opt.zero_grad()
            SARBLoss()(model(x, y), y).total.backward()
            if learn:
                assert model.alpha_logit.grad.abs().item() > 0
                assert model.beta_logit.grad.abs().item() > 0
            else:
                assert model.alpha_logit.grad is None and model.beta_logit.grad is None
            opt.step()
        if learn:
            assert model.alpha.item() != 0.5 and model.beta.item() != 0.5
            assert 0 < model.alpha.item() < 1 and 0 < model.beta.item() < 1
        else:
            assert model.alpha.item() == model.beta.item() == 0.5
    model.alpha_logit.data.fill_(-3.0)
    assert model.alpha.item() == pytest.approx(1 / (1 + math.exp(3.0)))


def test_builders_take_the_classes_of_a_flat_tree() -> None:
    from hmglib import LabelTree
    from hmglib.models import get_model

    tree = LabelTree.flat(["a", "b", "c"])
    assert tuple(tree.level_sizes) == (3,)
    opts = dict(backbone=stub_backbone(5), feature_dim=6, hidden=4, embed_dim=3)
    full = get_model("sarb", tree, num_prototypes=2, **opts)
    assert isinstance(full, SARB) and full.num_classes == 3 and full.ilrb and full.plrb
    assert full.prototypes.shape == (3, 2, 6)
    base = get_model("ssgrl", tree, **opts)
    assert isinstance(base, SARB) and not base.ilrb and not base.plrb
    linear = get_model("linear", tree, backbone=stub_backbone(5))
    assert isinstance(linear, LinearMultiLabel) and linear.fc.out_features == 3


def test_sarb_adjacency_checks_and_ignores_the_diagonal() -> None:
    adj = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    model = tiny_sarb(adjacency=adj)
    assert torch.equal(model.adjacency.diagonal(), torch.zeros(4))
    torch.testing.assert_close(model.adjacency, adj * (1 - torch.eye(4)))
    x = fmaps(3)
    before = model.eval()(x).logits
    model.set_adjacency(adj + torch.eye(4) * (1 - adj.diagonal()))  # another diagonal
    torch.testing.assert_close(model(x).logits, before)
    model.set_adjacency(torch.zeros(4, 4))
    assert not torch.allclose(model(x).logits, before)  # the graph matters
    for bad, message in ((torch.rand(3, 4), r"\(4, 4\), got shape \(3, 4\)"),
                         (torch.full((4, 4), 1.5), r"in \[0, 1\]"),
                         (-torch.rand(4, 4), r"in \[0, 1\]"),
                         (torch.full((4, 4), math.nan), r"in \[0, 1\]")):
        with pytest.raises(ValueError, match=message):
            model.set_adjacency(bad)
        with pytest.raises(ValueError, match=message):
            tiny_sarb(adjacency=bad)
    cooc = empirical_cooccurrence(TARGETS)  # float64, as the data gives it
    model.set_adjacency(cooc)
    torch.testing.assert_close(model.adjacency, (cooc * (1 - torch.eye(4))).float())


def test_fixed_embeddings_are_a_buffer_learned_ones_a_parameter() -> None:
    emb = torch.randn(4, 7)
    fixed = tiny_sarb(embeddings=emb)
    assert "embeddings" in dict(fixed.named_buffers())
    assert "embeddings" not in dict(fixed.named_parameters())
    torch.testing.assert_close(fixed.embeddings, emb)
    emb.add_(1.0)  # a copy: the caller's tensor does not move the model
    assert not torch.allclose(fixed.embeddings, emb)
    assert fixed.csrl.fc2.in_features == 7
    learned = tiny_sarb(embed_dim=5)
    assert "embeddings" in dict(learned.named_parameters())
    assert learned.embeddings.shape == (4, 5) and learned.embeddings.requires_grad
    learned.eval()(fmaps(2)).logits.sum().backward()
    assert learned.embeddings.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(4, E\), got shape \(3, 7\)"):
        tiny_sarb(embeddings=torch.randn(3, 7))
    with pytest.raises(ValueError, match="NaN"):
        tiny_sarb(embeddings=torch.full((4, 7), math.nan))


def test_prototypes_live_in_the_state_dict() -> None:
    model = tiny_sarb()
    protos, counts = torch.randn(4, 3, 6), torch.tensor([3, 0, 1, 2])
    model.set_prototypes(protos, counts)
    state = model.state_dict()
    assert {"prototypes", "prototype_counts", "adjacency"} <= set(state)
    fresh = tiny_sarb(seed=1)
    assert torch.all(fresh.prototype_counts == -1)  # never computed
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.prototypes, protos)
    assert torch.equal(fresh.prototype_counts, counts)


def test_set_prototypes_refuses_wrong_shapes_and_counts() -> None:
    model = tiny_sarb()
    good = torch.randn(4, 3, 6)
    with pytest.raises(ValueError, match=r"\(4, 2, 6\) must be \(4, 3, 6\)"):
        model.set_prototypes(torch.randn(4, 2, 6), torch.ones(4))
    for counts in (torch.ones(3), torch.tensor([1, 2, 3, 4]), torch.tensor([1, -1, 0, 0])):
        with pytest.raises(ValueError, match=r"counts must be \(4,\) in 0..3"):
            model.set_prototypes(good, counts)
    assert torch.all(model.prototype_counts == -1)  # nothing half-set
    with pytest.raises(ValueError, match="num_classes=0"):
        SARB(0, backbone=stub_backbone(2))
    with pytest.raises(ValueError, match="num_prototypes=0"):
        SARB(2, backbone=stub_backbone(2), num_prototypes=0)


def test_predict_concatenates_outputs_with_empty_optional_fields() -> None:
    model = tiny_sarb()
    data = TensorDataset(fmaps(7), torch.zeros(7, 4))
    out, _ = engine.predict(model, data, batch_size=3)
    assert out.logits.shape == (7, 4) and out.features.shape == (7, 4, 6)
    assert out.instance_logits is None and out.prototype_targets is None
    lin, _ = engine.predict(LinearMultiLabel(4, backbone=stub_backbone(5)), data, batch_size=3)
    assert lin.logits.shape == (7, 4) and lin.features is None and lin.attention is None


# ------------------------------------------------------------------ engine
class Recorder(nn.Module):
    """Records what it is called with; the first input column is the sample's index."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3)
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> MultiLabelOutput:
        self.calls.append((x[:, 0].long(), targets))
        return MultiLabelOutput(self.lin(x))


def test_fit_passes_the_targets_only_when_asked() -> None:
    x = torch.stack([torch.arange(8.0), torch.ones(8)], 1)  # (8, 2)
    labels = torch.randint(-1, 2, (8, 3), generator=torch.Generator().manual_seed(0))
    data = TensorDataset(x, labels)
    for pass_targets in (True, False):
        model = Recorder()
        engine.fit(model, PartialBCELoss(), data, epochs=2, batch_size=4, progress=False,
                   optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                   pass_targets=pass_targets)
        assert len(model.calls) == 4
        for index, targets in model.calls:
            if pass_targets:
                assert torch.equal(targets, labels[index])
            else:
                assert targets is None
    model.calls.clear()
    engine.predict(model, data, batch_size=4)
    assert model.calls and all(t is None for _, t in model.calls)


# ------------------------------------------------------------------ recipes
def test_freeze_backbone_on_a_resnet_body() -> None:
    body = build_backbone("resnet18")  # conv1, bn1, relu, maxpool, layer1 ... layer4
    frozen = freeze_backbone(body, 7)
    assert frozen == list(body.children())[:7]
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in body[7].parameters())
    whole = build_backbone("resnet18")
    assert freeze_backbone(whole, "all") == [whole]
    assert not any(p.requires_grad for p in whole.parameters())
    none = build_backbone("resnet18")
    assert freeze_backbone(none, 0) == [] and all(p.requires_grad for p in none.parameters())
    for bad in (-1, 9, True, 2.5, "some"):
        with pytest.raises(ValueError, match=r"must be 'all' or an int in 0..8"):
            freeze_backbone(body, bad)


def test_freeze_backbone_on_the_small_cnn() -> None:
    cnn = SmallCNN(width=4)  # 3 blocks of conv, BN, ReLU, pool
    frozen = freeze_backbone(cnn, 4)
    assert frozen == list(cnn.features)[:4]
    assert [p.requires_grad for p in cnn.parameters()] == [False] * 3 + [True] * 6
    with pytest.raises(ValueError, match=r"0..12"):
        freeze_backbone(SmallCNN(width=4), 13)
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="not a Sequential.*frozen='all'"):
        freeze_backbone(conv, 1)
    assert freeze_backbone(conv, "all") == [conv] and not conv.weight.requires_grad


def test_sarb_optimizer_takes_the_trainable_parameters() -> None:
    model = LinearMultiLabel(3, backbone=SmallCNN(width=4))
    freeze_backbone(model.backbone, "all")
    recipe = SARB_RECIPES["paper"]
    opt, sched = sarb_optimizer(model, recipe)
    assert isinstance(opt, torch.optim.Adam)
    assert {id(p) for p in opt.param_groups[0]["params"]} == {id(p) for p in model.fc.parameters()}
    assert opt.defaults["lr"] == 1e-5 and opt.defaults["weight_decay"] == 5e-4
    assert sched.step_size == 10 and sched.gamma == 0.1
    freeze_backbone(model, "all")
    with pytest.raises(ValueError, match="no trainable parameter"):
        sarb_optimizer(model, recipe)


def test_sarb_transforms_sizes() -> None:
    synthetic = SARB_RECIPES["synthetic"]
    small = dataclasses.replace(SARB_RECIPES["paper"], image_size=24, resize=40,
                                crop_sizes=(40, 32, 16), normalize=False)
    image = torch.rand(3, 50, 30)
    for recipe in (synthetic, small):
        for train in (True, False):
            torch.manual_seed(0)
            out = sarb_transforms(train, recipe)(image)
            assert out.shape == (3, recipe.image_size, recipe.image_size)
            assert out.dtype == torch.float32
            assert 0.0 <= out.min() and out.max() <= 1.0
    as_bytes = (image * 255).to(torch.uint8)
    assert sarb_transforms(False, small)(as_bytes).max() <= 1.0  # scaled to [0, 1]
    paper = SARB_RECIPES["paper"]
    assert sarb_transforms(False, paper)(torch.rand(3, 60, 40)).shape == (3, 448, 448)
    assert sarb_transforms(True, paper)(torch.rand(3, 60, 40)).shape == (3, 448, 448)


def test_sarb_transforms_normalize_with_imagenet_statistics() -> None:
    recipe = dataclasses.replace(SARB_RECIPES["paper"], image_size=16, resize=20,
                                 crop_sizes=(20, 12))
    image = torch.rand(3, 30, 20)
    plain = sarb_transforms(False, dataclasses.replace(recipe, normalize=False))(image)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(sarb_transforms(False, recipe)(image), (plain - mean) / std)
    torch.manual_seed(0)
    assert sarb_transforms(True, recipe)(image).shape == (3, 16, 16)


def test_the_paper_recipe() -> None:
    r = SARB_RECIPES["paper"]
    assert (r.lr, r.weight_decay, r.step_size, r.gamma, r.epochs) == (1e-5, 5e-4, 10, 0.1, 20)
    assert (r.blend_start, r.prototype_every, r.num_prototypes, r.lam) == (5, 5, 10, 0.05)
    assert r.frozen == 7 and r.image_size == 448 and r.crop_sizes == (512, 448, 384, 320, 256)


# ------------------------------------------------------------------ fit_sarb
@pytest.fixture(scope="module")
def world() -> TensorDataset:
    """48 MultiShapes images of 32 px, 6 classes, half the labels known."""
    shapes = MultiShapes("train", num_images=48, num_classes=6, group_size=2, image_size=32,
                         seed=0)
    images = torch.stack([shapes[i][0] for i in range(len(shapes))])  # (48, 3, 32, 32)
    return TensorDataset(images, drop_labels(shapes.targets, 0.5, seed=0))


def world_sarb(data: TensorDataset, seed: int = 0, **kw) -> SARB:
    torch.manual_seed(seed)
    return SARB(6, backbone=SmallCNN(width=4), feature_dim=8, hidden=8, embed_dim=6,
                num_prototypes=2, adjacency=empirical_cooccurrence(data.tensors[1]), **kw)


def recipe(**kw) -> SARBRecipe:
    return dataclasses.replace(SARB_RECIPES["synthetic"], **{
        "epochs": 6, "blend_start": 2, "prototype_every": 2, "batch_size": 16, "lr": 1e-2,
        "frozen": "all", "num_prototypes": 2, **kw})


def test_fit_sarb_schedule_with_a_frozen_backbone(world) -> None:
    model = world_sarb(world)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = model.head.weight.detach().clone()
    fit = fit_sarb(model, world, recipe(step_size=4, gamma=0.1), seed=0)
    assert isinstance(fit, SARBFit) and fit.seconds > 0
    hist = fit.history
    assert [r["epoch"] for r in hist] == list(range(6))
    assert [r["blending"] for r in hist] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert fit.prototype_epochs == [2, 4]
    assert [r["lr"] for r in hist] == pytest.approx([1e-2] * 4 + [1e-3] * 2)
    assert all(r["instance"] == r["prototype"] == 0.0 for r in hist[:2])
    assert all(r["instance"] > 0 and r["prototype"] > 0 for r in hist[2:])
    # alpha and beta take no gradient before the blends, then learn
    assert all(r["alpha"] == r["beta"] == 0.5 for r in hist[:2])
    assert hist[-1]["alpha"] != 0.5 and hist[-1]["beta"] != 0.5
    # the loss falls: the scores' term over the run, the total over the plain epochs and
    # over the blending ones (the blends add two terms at blend_start)
    assert hist[-1]["cls"] < hist[0]["cls"]
    assert hist[1]["loss"] < hist[0]["loss"] and hist[-1]["loss"] < hist[2]["loss"]
    # every step is logged: 6 epochs x 3 batches of 16
    assert len(fit.steps) == 18
    assert [s["epoch"] for s in fit.steps] == [e for e in range(6) for _ in range(3)]
    for e in range(6):
        steps = [s["loss"] for s in fit.steps if s["epoch"] == e]
        assert hist[e]["loss"] == pytest.approx(sum(steps) / 3)
    assert set(fit.steps[0]) >= {"epoch", "loss", *SARB_TERMS}
    # the frozen backbone: parameters and BatchNorm statistics unchanged
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not torch.equal(model.head.weight, head)
    assert (model.prototype_counts > 0).all() and model.prototype_counts.max() <= 2


def test_fit_sarb_with_a_partly_frozen_backbone_and_blends_from_the_start(world) -> None:
    model = world_sarb(world, learn_blend=False)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    fit = fit_sarb(model, world, recipe(epochs=5, blend_start=0, prototype_every=3, frozen=4),
                   seed=1)
    assert [r["blending"] for r in fit.history] == [1.0] * 5
    assert fit.prototype_epochs == [0, 3]
    assert fit.history[-1]["loss"] < fit.history[0]["loss"]
    assert all(r["alpha"] == r["beta"] == 0.5 for r in fit.history)
    after = model.backbone.state_dict()
    for key in before:  # block 1 (features.0-3) fixed, the rest trained
        same = torch.equal(after[key], before[key])
        if key.startswith(("features.0.", "features.1.")):
            assert same, key
        elif not key.endswith("num_batches_tracked"):
            assert not same, key


def test_fit_sarb_trains_the_baselines(world) -> None:
    torch.manual_seed(0)
    linear = LinearMultiLabel(6, backbone=SmallCNN(width=4))
    fit = fit_sarb(linear, world, recipe(epochs=4, frozen=0), loss=PartialBCELoss())
    assert fit.history[-1]["loss"] < fit.history[0]["loss"]
    assert [r["blending"] for r in fit.history] == [0.0] * 4 and fit.prototype_epochs == []
    assert "alpha" not in fit.history[0]
    assert all(r["loss"] == r["cls"] for r in fit.history)
    ssgrl = world_sarb(world, ilrb=False, plrb=False)
    fit = fit_sarb(ssgrl, world, recipe(epochs=3, blend_start=1), loss=PartialBCELoss())
    assert [r["blending"] for r in fit.history] == [0.0] * 3 and fit.prototype_epochs == []
    assert fit.history[-1]["loss"] < fit.history[0]["loss"]


def test_fit_sarb_refuses_bad_recipes(world) -> None:
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        fit_sarb(world_sarb(world), world, "fast")
    for bad in (dict(epochs=0), dict(blend_start=-1), dict(prototype_every=0)):
        with pytest.raises(ValueError, match="epochs >= 1"):
            fit_sarb(world_sarb(world), world, recipe(**bad))


def test_positive_features_are_those_of_the_known_positives(world) -> None:
    model = world_sarb(world).train()
    per_class = positive_features(model, world, batch_size=20)
    assert model.training  # the mode is restored
    images, labels = world.tensors
    model.eval()
    with torch.no_grad():
        feats, _ = model.category_features(images)
    assert len(per_class) == 6
    for c in range(6):
        torch.testing.assert_close(per_class[c], feats[labels[:, c] == 1, c])


def test_fit_sarb_is_keyed_on_its_seed_alone(world) -> None:
    runs = []
    for global_seed in (1, 2):
        model = world_sarb(world)  # the same initialisation
        torch.manual_seed(global_seed)
        runs.append(fit_sarb(model, world, recipe(epochs=3, blend_start=1), seed=0).steps)
    assert runs[0] == runs[1]
