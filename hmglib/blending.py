"""SARB's training schedule: plain epochs, then blending with refreshed prototypes.

:func:`fit_sarb` runs a :class:`~hmglib.recipes.SARBRecipe` on a multi-label
model (:class:`~hmglib.models.sarb.SARB` or a baseline), every epoch through
:func:`hmglib.engine.fit` (device, mixed precision, the non-finite-loss guard),
as the paper describes (Pu et al., AAAI 2022, implementation details):

1. Epochs ``0 .. blend_start - 1`` train on the original category features
   only (the partial BCE and the contrastive term).
2. At ``blend_start`` the blends switch on. If the model has PLRB, its
   prototypes are computed first: every training image's category features,
   in eval mode without gradients, K-means per class over the known positives
   (:func:`~hmglib.models.sarb.prototypes_from_positives`); they are recomputed
   every ``prototype_every`` epochs after that.

A baseline (no blends) trains the same epochs with the same optimiser and
schedule. The backbone's frozen modules (:func:`~hmglib.recipes.freeze_backbone`)
stay in eval mode, so their BatchNorm statistics do not move.

The data order of epoch ``e`` is keyed on ``(seed, e)``, so runs that differ
only in their blends see the same batches; the blends' own draws (ILRB's
partners, PLRB's prototypes) come from a generator keyed on ``(seed, e)`` too.
Every training step's loss and its parts are kept (:attr:`SARBFit.steps`):
the paper's claim that PLRB makes the training loss smoother is about these.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hmglib import engine
from hmglib.losses import SARBLoss
from hmglib.models.sarb import SARB, prototypes_from_positives
from hmglib.recipes import SARB_RECIPES, SARBRecipe, freeze_backbone, sarb_optimizer

__all__ = ["fit_sarb", "SARBFit", "positive_features"]


@dataclass
class SARBFit:
    """What :func:`fit_sarb` returns.

    Attributes:
        history: one row per epoch: ``epoch`` (0-based), ``loss`` (mean of the
            total), its parts ``cls``, ``instance``, ``prototype``,
            ``contrastive``, ``alpha`` and ``beta`` at the epoch's end (SARB
            only), ``blending`` (0/1), ``lr`` and ``seconds``.
        steps: one row per training step: ``epoch``, ``loss`` and its parts.
        prototype_epochs: the epochs before which prototypes were computed.
        seconds: the wall time of the whole schedule.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    prototype_epochs: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _epoch_seed(seed: int, epoch: int) -> int:
    return zlib.crc32(f"{seed}/sarb/{epoch}".encode())


def positive_features(model: SARB, data: Dataset, batch_size: int = 256,
                      device: torch.device | None = None,
                      num_workers: int = 0) -> list[torch.Tensor]:
    """The category features of every known positive, per class.

    ``model`` runs in eval mode without gradients over ``data`` (``(image,
    partial labels)`` pairs, ``batch_size`` at a time, loaded by ``num_workers``
    processes); its train/eval mode is restored.

    Returns:
        ``C`` tensors ``(n_c, D)`` on the cpu: class ``c``'s features of the images
        where ``c`` is a known positive.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    per_class: list[list[torch.Tensor]] = [[] for _ in range(model.num_classes)]
    try:
        with torch.no_grad():
            for images, targets in DataLoader(data, batch_size=batch_size,
                                              num_workers=num_workers,
                                              generator=torch.Generator()):
                feats, _ = model.category_features(images.to(device))  # (B, C, D)
                feats, targets = feats.float().cpu(), torch.as_tensor(targets)
                for c in range(model.num_classes):
                    per_class[c].append(feats[targets[:, c] == 1, c])  # (n, D)
    finally:
        model.train(was_training)
    return [torch.cat(parts) for parts in per_class]


class _StepLog:
    """Wraps a loss to keep every training step's value and parts."""

    def __init__(self, loss: Callable[[Any, Any], Any], epoch: int,
                 rows: list[dict[str, float]]) -> None:
        self.loss, self.epoch, self.rows = loss, epoch, rows

    def __call__(self, output: Any, targets: Any) -> Any:
        value = self.loss(output, targets)
        row = {"epoch": self.epoch}
        if hasattr(value, "_asdict"):
            row.update({k: float(v.detach()) for k, v in value._asdict().items()})
            row["loss"] = row.pop("total")
        else:
            row["loss"] = float(value.detach())
        self.rows.append(row)
        return value


def _check_recipe(recipe: SARBRecipe | str) -> SARBRecipe:
    if isinstance(recipe, str):
        if recipe not in SARB_RECIPES:
            raise ValueError(f"fit_sarb: unknown recipe '{recipe}'; choose one of "
                             f"{sorted(SARB_RECIPES)} or pass a SARBRecipe.")
        return SARB_RECIPES[recipe]
    if recipe.epochs < 1 or recipe.blend_start < 0 or recipe.prototype_every < 1:
        raise ValueError(f"fit_sarb: the recipe needs epochs >= 1, blend_start >= 0 and "
                         f"prototype_every >= 1; got {recipe}.")
    return recipe


def fit_sarb(model: nn.Module, train_data: Dataset, recipe: SARBRecipe | str = "synthetic", *,
             loss: nn.Module | None = None, seed: int = 0,
             device: str | torch.device | None = None, amp: bool | None = None,
             progress: bool = False, num_workers: int = 0) -> SARBFit:
    """Train a multi-label model with SARB's schedule (see the module's documentation).

    Args:
        model: a :class:`~hmglib.models.sarb.SARB` (blends and prototypes as it is
            configured) or any model called as ``model(images, targets)`` that
            returns a :class:`~hmglib.models.sarb.MultiLabelOutput` (the baselines).
        train_data: ``(image, partial labels (C,) in {1, 0, -1})`` pairs.
        recipe: a :class:`~hmglib.recipes.SARBRecipe` or a name in
            :data:`~hmglib.recipes.SARB_RECIPES`.
        loss: default ``SARBLoss(lam=recipe.lam)`` (the baselines pass
            ``PartialBCELoss()``).
        seed: keys the data order of every epoch and K-means.
        device, amp, progress, num_workers: as :func:`hmglib.engine.fit`.

    Returns:
        :class:`SARBFit`; ``model`` holds the last epoch's weights.
    """
    recipe = _check_recipe(recipe)
    dev = engine.pick_device(device)
    model.to(dev)
    backbone = getattr(model, "backbone", None)
    frozen = freeze_backbone(backbone, recipe.frozen) if backbone is not None else []
    loss = loss if loss is not None else SARBLoss(lam=recipe.lam)
    optimizer, scheduler = sarb_optimizer(model, recipe)
    is_sarb = isinstance(model, SARB)
    blends = is_sarb and (model.ilrb or model.plrb)
    if is_sarb and model.plrb and recipe.num_prototypes != model.num_prototypes:
        raise ValueError(f"fit_sarb: the recipe asks for {recipe.num_prototypes} prototypes per "
                         f"class and the model holds {model.num_prototypes}; build the model "
                         "with num_prototypes=recipe.num_prototypes.")
    result = SARBFit()
    t0 = time.perf_counter()
    for epoch in range(recipe.epochs):
        blending = blends and epoch >= recipe.blend_start
        if is_sarb:
            model.set_blending(blending)
            model.generator = torch.Generator().manual_seed(
                zlib.crc32(f"{seed}/sarb-blend/{epoch}".encode()))
            due = (epoch - recipe.blend_start) % recipe.prototype_every == 0
            if blending and model.plrb and due:
                per_class = positive_features(model, train_data, 4 * recipe.batch_size, dev,
                                              num_workers)
                model.set_prototypes(*prototypes_from_positives(
                    per_class, model.num_prototypes, _epoch_seed(seed, epoch)))
                result.prototype_epochs.append(epoch)
        for module in frozen:  # fixed statistics: the frozen part stays in eval mode
            module.eval()
        lr = optimizer.param_groups[0]["lr"]
        fitted = engine.fit(_FrozenEval(model, frozen), _StepLog(loss, epoch, result.steps),
                            train_data, epochs=1, optimizer=optimizer, scheduler=scheduler,
                            batch_size=recipe.batch_size, seed=_epoch_seed(seed, epoch),
                            device=dev, amp=amp, num_workers=num_workers, progress=progress,
                            pass_targets=True)
        row = {k: v for k, v in fitted.history[-1].items() if k != "epoch"}
        row.update(epoch=epoch, blending=float(blending), lr=lr)
        if is_sarb:
            row.update(alpha=float(model.alpha.detach()), beta=float(model.beta.detach()))
        result.history.append(row)
    result.seconds = time.perf_counter() - t0
    return result


class _FrozenEval(nn.Module):
    """The model, with its frozen modules put back in eval mode whenever ``train()`` is
    called (``engine.fit`` calls it every epoch)."""

    def __init__(self, model: nn.Module, frozen: list[nn.Module]) -> None:
        super().__init__()
        self.model, self._frozen = model, frozen

    def train(self, mode: bool = True) -> _FrozenEval:
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        return self.model(images, targets)
