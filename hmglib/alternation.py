"""RA-CNN's training: per-scale classifiers, APN initialisation, then alternation.

:func:`fit_racnn` runs a :class:`~hmglib.recipes.RACNNRecipe` on an
:class:`~hmglib.models.racnn.RACNN`, every epoch through
:func:`hmglib.engine.fit` (device, mixed precision, the non-finite-loss guard),
in the paper's three steps (Fu et al., CVPR 2017, Sec. 3.3):

1. **Scale by scale**, the classification network of scale ``s`` is trained on
   its own input with the cross-entropy (``RACNN.set_phase("scale", s)``: the
   forward stops after scale ``s``; the boxes before it come from the APNs
   initialised so far). Then, while ``s`` is not the last scale,
2. **APN ``s`` is initialised**: for every training image, the square of half
   the image's side (:attr:`~hmglib.recipes.RACNNRecipe.init_half`) around the
   highest response of scale ``s``'s last feature map (the channels summed) is
   the target, and the APN regresses onto it (mean squared error;
   :func:`response_squares`).
3. **Alternation**: the classifiers and the fused layer learn on ``L_cls``
   with the APNs fixed (``"classifiers"``), then the APNs learn on ``L_rank``
   with the classifiers fixed and in eval mode (``"apns"``); the two phases
   repeat.

**Convergence rule.** A phase stops after its most epochs, or at the first
epoch whose mean loss (``L_cls`` or ``L_rank``) is not at least ``tol`` below
the epoch before (relative); the alternation stops after ``rounds`` rounds, or
after a round in which neither phase improved its last epoch's loss by ``tol``
over the round before. The paper says "until convergence" without a rule; this
one is stated so that a run can be repeated.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hmglib import engine
from hmglib.losses import RACNNLoss
from hmglib.models.racnn import RACNN, RACNNOutput
from hmglib.recipes import RACNN_RECIPES, RACNNRecipe

__all__ = ["fit_racnn", "RACNNFit", "response_squares", "racnn_optimizer"]


@dataclass
class RACNNFit:
    """What :func:`fit_racnn` returns.

    Attributes:
        history: one row per epoch: ``stage`` (``"scale 1"``, ``"apn 1 init"``,
            ``"classifiers"``, ``"apns"``), ``round`` (0 before the alternation),
            ``epoch`` (within the stage), ``loss`` (the stage's mean loss), its
            parts ``cls``, ``fused``, ``rank`` where the stage has them, and
            ``seconds``.
        rounds: the alternation rounds run.

    With ``apn_epochs = 0`` the alternation trains the classifiers only, with the
    APNs as their initialisation left them (a control run).
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    rounds: int = 0


def racnn_optimizer(model: RACNN, recipe: RACNNRecipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over the parameters that train in the model's
    current phase: backbones at ``backbone_lr``, heads and fused layer at
    ``head_lr``, APNs at ``apn_lr`` (``apn_init_lr`` in phase ``"apn-init"``).

    Raises:
        ValueError: nothing trains in the current phase, or an unknown optimiser.
    """
    groups = []
    apn_lr = recipe.apn_init_lr if model.phase == "apn-init" else recipe.apn_lr
    for modules, lr in ((model.backbones, recipe.backbone_lr),
                        ([*model.heads, model.fuse], recipe.head_lr), (model.apns, apn_lr)):
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr})
    if not groups:
        raise ValueError(f"racnn_optimizer: nothing trains in phase '{model.phase}'.")
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer '{recipe.optimizer}'; use 'sgd' or 'adam'.")


@torch.no_grad()
def response_squares(model: RACNN, data: Dataset, scale: int, half: float = 0.25,
                     batch_size: int = 128, device: str | torch.device | None = None
                     ) -> torch.Tensor:
    """The APN initialisation's targets: per image, the square of half-side
    ``half`` around the highest response of scale ``scale``'s last feature map.

    The response is the map summed over channels; its arg-max cell's centre is
    the square's centre, moved inside the scale's input. The half-side is
    clamped into the model's :class:`~hmglib.models.racnn.BoxBounds`.

    Args:
        model: the RA-CNN (scales before ``scale`` are run with their APNs).
        data: ``(image, target)`` pairs (the targets are not used).
        scale: 0-based, below ``model.num_scales - 1``.
        half: the half-side, a fraction of the scale's input side.
        batch_size: images per forward.
        device: default :func:`hmglib.engine.pick_device`.

    Returns:
        ``(N, 3)`` float32 boxes ``(t_x, t_y, t_l)`` in scale ``scale``'s input
        coordinates, in dataset order (on the cpu).
    """
    dev = engine.pick_device(None if device is None else str(device))
    phase, phase_scale, was_training = model.phase, model.phase_scale, model.training
    maps: list[torch.Tensor] = []
    hook = model.backbones[scale].register_forward_hook(
        lambda _m, _i, out: maps.append(out.sum(1).float().cpu()))  # (B, h, w)
    model.to(dev).set_phase("scale", scale).eval()
    try:
        for images, _ in DataLoader(data, batch_size=batch_size, shuffle=False):
            model(images.to(dev))
    finally:
        hook.remove()
        model.set_phase(phase, phase_scale).train(was_training)
    response = torch.cat(maps)  # (N, h, w)
    n, h, w = response.shape
    flat = response.flatten(1).argmax(1)  # (N,)
    cx = ((flat % w).float() + 0.5) / w  # (N,)
    cy = ((flat // w).float() + 0.5) / h  # (N,)
    tl = torch.full_like(cx, half).clamp(model.bounds.min_half, model.bounds.max_half)
    return torch.stack([cx.clamp(tl, 1 - tl), cy.clamp(tl, 1 - tl), tl], 1)  # (N, 3)


class _WithBoxes(Dataset):
    """``(image, box)`` pairs: a dataset's images with one target box each."""

    def __init__(self, data: Dataset, boxes: torch.Tensor) -> None:
        self.data, self.boxes = data, boxes

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[index][0], self.boxes[index]


class _BoxRegression(nn.Module):
    """The mean squared error of APN ``scale``'s boxes against target boxes."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, output: RACNNOutput, boxes: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output.boxes[:, self.scale], boxes)  # (B, 3) vs (B, 3)


class _ScaleLoss(nn.Module):
    """The cross-entropy of scale ``scale`` only (step 1)."""

    def __init__(self, loss: RACNNLoss, scale: int) -> None:
        super().__init__()
        self.loss, self.scale = loss, scale

    def forward(self, output: RACNNOutput, targets: torch.Tensor) -> torch.Tensor:
        logits = output.scale_logits[:, self.scale]  # (B, K)
        return F.cross_entropy(logits, self.loss.classes(targets, logits.shape[1]))


def fit_racnn(model: RACNN, train_data: Dataset, recipe: str | RACNNRecipe = "synthetic", *,
              tree: Any = None, seed: int = 0, device: str | torch.device | None = None,
              progress: bool = False,
              on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> RACNNFit:
    """Train ``model`` with RA-CNN's schedule (see the module's documentation).

    Args:
        model: an :class:`~hmglib.models.racnn.RACNN` (its APNs are initialised
            here; its scale networks may start from pretrained weights).
        train_data: ``(image, target)`` pairs; targets are leaf nodes of ``tree``,
            or class indices when ``tree`` is ``None``.
        recipe: a name in :data:`~hmglib.recipes.RACNN_RECIPES` or a recipe.
        tree: the label tree of the targets (see :class:`~hmglib.losses.RACNNLoss`).
        seed: seeds the data order of every epoch.
        device: default :func:`hmglib.engine.pick_device`.
        progress: tqdm bars per epoch.
        on_epoch_end: called with every history row as it is written.

    Returns:
        :class:`RACNNFit`. The model ends in phase ``"all"``, in train mode.
    """
    r = RACNN_RECIPES[recipe] if isinstance(recipe, str) else recipe
    fit = RACNNFit()

    def epoch(loss_fn: Callable, data: Dataset, optimizer: torch.optim.Optimizer,
              stage: str, rnd: int, i: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        # the data order depends on (seed, stage, round, epoch) only, so two runs
        # whose schedules differ in one stage see the same batches in the others
        order = zlib.crc32(f"{seed}/{stage}/{rnd}/{i}".encode())
        done = engine.fit(model, loss_fn, data, epochs=1, optimizer=optimizer,
                          batch_size=r.batch_size, seed=order, device=device,
                          progress=progress)
        row = {"stage": stage, "round": rnd, "epoch": i,
               **{k: v for k, v in done.history[-1].items() if k not in ("epoch", "seconds")},
               "seconds": time.perf_counter() - t0}
        fit.history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(row)
        return row

    def phase(loss_fn: Callable, data: Dataset, stage: str, epochs: int, rnd: int = 0,
              monitor: str = "loss") -> float:
        optimizer = racnn_optimizer(model, r)
        last = float("inf")
        for i in range(epochs):
            value = epoch(loss_fn, data, optimizer, stage, rnd, i)[monitor]
            settled = value > last * (1 - r.tol)
            last = value
            if settled:
                break
        return last

    ce = RACNNLoss(tree, margin=r.margin, terms=("cls",))
    for s in range(model.num_scales):  # step 1 and step 2, scale by scale
        model.set_phase("scale", s)
        phase(_ScaleLoss(ce, s), train_data, f"scale {s + 1}", r.scale_epochs)
        if s < model.num_scales - 1:
            squares = response_squares(model, train_data, s, r.init_half, device=device)
            model.set_phase("apn-init", s)
            phase(_BoxRegression(s), _WithBoxes(train_data, squares), f"apn {s + 1} init",
                  r.apn_init_epochs)

    rank = RACNNLoss(tree, margin=r.margin, terms=("rank",))
    before = (float("inf"), float("inf"))
    for rnd in range(1, r.rounds + 1):  # step 3
        model.set_phase("classifiers")
        cls = phase(ce, train_data, "classifiers", r.cls_epochs, rnd, monitor="cls")
        if model.num_scales > 1 and r.apn_epochs > 0:
            model.set_phase("apns")
            rk = phase(rank, train_data, "apns", r.apn_epochs, rnd, monitor="rank")
        else:
            rk = 0.0
        fit.rounds = rnd
        improved = (cls < before[0] * (1 - r.tol)) or (rk < before[1] * (1 - r.tol))
        before = (cls, rk)
        if not improved:
            break
    model.set_phase("all").train()
    return fit
