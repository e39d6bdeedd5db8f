"""Training recipes: the papers' hyper-parameters and image pipelines, in one place.

The official HRN code fine-tunes an ImageNet ResNet-50 with one of two branches,
chosen by the relabel ratio (:func:`hrn_recipe_name` picks the same way):

* ``"paper"``: SGD (momentum 0.9, weight decay 5e-4), the new layers at 2e-3
  and the backbone at 2e-4, a cosine schedule stepped per epoch, batch 8,
  200 epochs;
* ``"paper-90"``, at 90 % relabelled: every layer at 1e-4, a step schedule
  (x0.1 every 60 epochs), batch 8, 100 epochs; ``"paper-90-cars"`` is the same
  branch on Stanford Cars, at lr 1e-3 and batch 32.

The book's CPU runs fine-tune the small backbone pretrained on the synthetic
pretraining world (:mod:`hmglib.pretraining`) for a few epochs, with Adam,
which converges in a few hundred steps where SGD at the paper's rates needs
thousands:

* ``"synthetic"``: Adam, the new layers at 3e-3 and the pretrained backbone at
  1e-3, a cosine schedule. (The paper's ratio of ten, 3e-4 for the backbone,
  left the small CNN's features under-adapted in six epochs: 87 % species OA
  on HierShapes against 91 % at 1e-3, one seed.)
* ``"synthetic-90"``: the analog of the 90 % branch: every layer at the
  backbone's rate (1e-3) with a step schedule (x0.1 after 60 % of the
  epochs), the official branch's shape scaled to a short run;
* ``"synthetic-scratch"``: a randomly initialised small CNN, every layer at
  3e-3 (the book shows it once, beside the fine-tuned runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.transforms import v2

__all__ = ["HRNRecipe", "HRN_RECIPES", "hrn_recipe_name", "hrn_optimizer", "hrn_transforms",
           "RACNNRecipe", "RACNN_RECIPES", "SARBRecipe", "SARB_RECIPES", "sarb_optimizer",
           "sarb_transforms", "freeze_backbone"]


@dataclass(frozen=True)
class HRNRecipe:
    """Optimiser and schedule of an HRN run.

    Attributes:
        optimizer: ``"sgd"`` (with momentum and weight decay) or ``"adam"``.
        backbone_lr: learning rate of the (pretrained) backbone.
        head_lr: learning rate of the new layers (blocks and heads).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        batch_size: images per step.
        epochs: the recipe's number of epochs.
        schedule: ``"cosine"`` (annealed to 0 over the run, stepped per epoch) or
            ``"step"`` (the rates times ``gamma`` every ``step_size`` epochs).
        step_size: epochs between two steps of a ``"step"`` schedule; a float in
            ``(0, 1)`` is a share of the run's epochs (for the short CPU analogs).
        gamma: the factor of each step.
    """

    optimizer: str
    backbone_lr: float
    head_lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: int
    schedule: str = "cosine"
    step_size: float = 60
    gamma: float = 0.1


#: HRN's training recipes by name (the paper's, and the book's CPU analogs).
HRN_RECIPES: dict[str, HRNRecipe] = {
    # official HRN: SGD, backbone 2e-4, new layers 2e-3, cosine per epoch, batch 8, 200 epochs
    "paper": HRNRecipe(optimizer="sgd", backbone_lr=2e-4, head_lr=2e-3, momentum=0.9,
                       weight_decay=5e-4, batch_size=8, epochs=200),
    # official HRN at 90 % relabelled: every layer at 1e-4, StepLR(60, 0.1), 100 epochs
    "paper-90": HRNRecipe(optimizer="sgd", backbone_lr=1e-4, head_lr=1e-4, momentum=0.9,
                          weight_decay=5e-4, batch_size=8, epochs=100, schedule="step",
                          step_size=60, gamma=0.1),
    # the same branch on Stanford Cars: lr 1e-3, batch 32
    "paper-90-cars": HRNRecipe(optimizer="sgd", backbone_lr=1e-3, head_lr=1e-3, momentum=0.9,
                               weight_decay=5e-4, batch_size=32, epochs=100, schedule="step",
                               step_size=60, gamma=0.1),
    # CPU: fine-tune the pretrained small CNN with Adam, the backbone three times slower
    "synthetic": HRNRecipe(optimizer="adam", backbone_lr=1e-3, head_lr=3e-3, momentum=0.9,
                           weight_decay=0.0, batch_size=32, epochs=6),
    # CPU analog of the 90 % branch: one small rate everywhere, a step at 60 % of the run
    "synthetic-90": HRNRecipe(optimizer="adam", backbone_lr=1e-3, head_lr=1e-3, momentum=0.9,
                              weight_decay=0.0, batch_size=32, epochs=6, schedule="step",
                              step_size=0.6, gamma=0.1),
    # CPU, from scratch: a random small CNN, every layer at 3e-3
    "synthetic-scratch": HRNRecipe(optimizer="adam", backbone_lr=3e-3, head_lr=3e-3,
                                   momentum=0.9, weight_decay=0.0, batch_size=32, epochs=10),
}


def hrn_recipe_name(relabel: float, dataset: str = "cub200", synthetic: bool = False) -> str:
    """The recipe the official code trains with at a relabel ratio.

    The official code switches to its second branch exactly at 90 % relabelled
    (``"paper-90"``, or ``"paper-90-cars"`` on Stanford Cars) and uses ``"paper"``
    at every other ratio. ``synthetic=True`` gives the CPU analogs
    (``"synthetic-90"`` / ``"synthetic"``) for the fine-tuned small CNN.

    Args:
        relabel: the share of relabelled training images, in ``[0, 1]``.
        dataset: ``"cub200"``, ``"aircraft"``, ``"cars"`` or ``"hiershapes"``.
        synthetic: pick the CPU analog instead of the paper's recipe.

    Raises:
        ValueError: ``relabel`` outside ``[0, 1]``.
    """
    if not 0.0 <= relabel <= 1.0:
        raise ValueError(f"hrn_recipe_name: relabel={relabel} must be in [0, 1].")
    at_90 = math.isclose(relabel, 0.9, abs_tol=1e-9)
    if synthetic:
        return "synthetic-90" if at_90 else "synthetic"
    if at_90:
        return "paper-90-cars" if dataset == "cars" else "paper-90"
    return "paper"


def hrn_optimizer(
    model: nn.Module, recipe: str | HRNRecipe = "paper", epochs: int | None = None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The recipe's optimiser (SGD or Adam) with the backbone and the new layers at
    their own rates, and its schedule (cosine or step), stepped once per epoch.

    Args:
        model: a model whose pretrained part is ``model.backbone`` (or
            ``model.trunk.backbone`` for the baselines); everything else is new.
        recipe: a name in :data:`HRN_RECIPES` or a recipe.
        epochs: the schedule's length (default: the recipe's).
    """
    r = HRN_RECIPES[recipe] if isinstance(recipe, str) else recipe
    holder = model.trunk if hasattr(model, "trunk") else model
    backbone = getattr(holder, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise ValueError(f"{type(model).__name__} has no `.backbone` (or `.trunk.backbone`).")
    base_ids = {id(p) for p in backbone.parameters()}
    new = [p for p in model.parameters() if id(p) not in base_ids]
    groups = [{"params": list(backbone.parameters()), "lr": r.backbone_lr},
              {"params": new, "lr": r.head_lr}]
    if r.optimizer == "sgd":
        opt = torch.optim.SGD(groups, momentum=r.momentum, weight_decay=r.weight_decay)
    elif r.optimizer == "adam":
        opt = torch.optim.Adam(groups, weight_decay=r.weight_decay)
    else:
        raise ValueError(f"unknown optimizer '{r.optimizer}'; use 'sgd' or 'adam'.")
    total = epochs or r.epochs
    if r.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    elif r.schedule == "step":
        step = r.step_size if r.step_size >= 1 else r.step_size * total
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, round(step)), gamma=r.gamma)
    else:
        raise ValueError(f"unknown schedule '{r.schedule}'; use 'cosine' or 'step'.")
    return opt, sched


def hrn_transforms(train: bool, size: int = 448, resize: int = 550) -> v2.Compose:
    """The official HRN image pipeline on ``(3, H, W)`` float tensors in ``[0, 1]``.

    Train: resize the short side to ``resize``, random crop ``size`` (padding 8),
    horizontal flip, normalise with mean = std = 0.5. Test: resize, centre crop.
    Output ``(3, size, size)`` float in ``[-1, 1]``.
    """
    steps: list[nn.Module] = [v2.Resize(resize, antialias=True)]
    if train:
        steps += [v2.RandomCrop(size, padding=8), v2.RandomHorizontalFlip()]
    else:
        steps += [v2.CenterCrop(size)]
    steps += [v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3)]
    return v2.Compose(steps)


@dataclass(frozen=True)
class RACNNRecipe:
    """RA-CNN's training schedule (run by :func:`hmglib.alternation.fit_racnn`).

    The paper's three steps: (1) each scale's classification network is trained
    on its own input; (2) each APN is initialised by regressing onto the square
    around the highest response of its scale's last feature map, half the side
    of the image; (3) the classifiers (on ``L_cls``, APNs fixed) and the APNs (on
    ``L_rank``, classifiers fixed) are trained in turn.

    Attributes:
        optimizer: ``"sgd"`` (momentum, weight decay) or ``"adam"``.
        backbone_lr: learning rate of the (pretrained) scale networks' backbones.
        head_lr: learning rate of the classification heads and the fused layer.
        apn_lr: learning rate of the APNs in the ranking phases.
        apn_init_lr: learning rate of the APNs' initialisation (a regression).
        momentum, weight_decay: SGD's.
        batch_size: images per step.
        scale_epochs: epochs of step 1, per scale.
        apn_init_epochs: epochs of step 2, per APN.
        cls_epochs: the most epochs of one classifier phase of step 3.
        apn_epochs: the most epochs of one APN phase of step 3.
        rounds: the most rounds (a classifier phase and an APN phase) of step 3.
        tol: the convergence rule: a phase stops at the first epoch whose mean
            loss is not at least ``tol`` (relative) below the epoch before, and
            the alternation stops after a round in which neither phase improved its
            loss by ``tol`` over the round before.
        margin: the ranking loss's margin.
        init_half: the half-side of the APNs' initial squares (0.25: half the side
            of the image, as the paper).
    """

    optimizer: str
    backbone_lr: float
    head_lr: float
    apn_lr: float
    apn_init_lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    scale_epochs: int
    apn_init_epochs: int
    cls_epochs: int
    apn_epochs: int
    rounds: int
    tol: float = 0.01
    margin: float = 0.05
    init_half: float = 0.25


#: RA-CNN's training recipes by name.
RACNN_RECIPES: dict[str, RACNNRecipe] = {
    # the paper's schedule on VGG-19; the paper states no rates or epoch counts:
    # SGD at the common fine-tuning rates, each phase run until its loss settles
    "paper": RACNNRecipe(optimizer="sgd", backbone_lr=1e-3, head_lr=1e-2, apn_lr=1e-3,
                         apn_init_lr=1e-3, momentum=0.9, weight_decay=5e-4, batch_size=16,
                         scale_epochs=30, apn_init_epochs=10, cls_epochs=30, apn_epochs=10,
                         rounds=3),
    # CPU: the pretrained small CNN with Adam, a few epochs per phase; the APNs'
    # ranking phases at 1e-4 (at 1e-3 they raised L_rank and L_cls, one seed)
    "synthetic": RACNNRecipe(optimizer="adam", backbone_lr=1e-3, head_lr=3e-3, apn_lr=1e-4,
                             apn_init_lr=1e-3, momentum=0.9, weight_decay=0.0, batch_size=32,
                             scale_epochs=4, apn_init_epochs=2, cls_epochs=3, apn_epochs=2,
                             rounds=2),
}


@dataclass(frozen=True)
class SARBRecipe:
    """SARB's training recipe (run by :func:`hmglib.blending.fit_sarb`).

    The paper (Pu et al., AAAI 2022, implementation details): ResNet-101 with
    conv1 … layer3 frozen, Adam (betas 0.9, 0.999, weight decay 5e-4) at 1e-5
    divided by 10 every 10 epochs, 20 epochs, blending from epoch 5 with the
    prototypes recomputed then and every 5 epochs, ``K = 10`` prototypes per
    class, ``lambda = 0.05``; training images resized to 512, cropped at a random
    size from {512, 448, 384, 320, 256}, resized to 448 and flipped; test images
    resized to 448. The official code uses batch 8, the paper's text 16.

    Attributes:
        lr, weight_decay, betas: Adam's.
        step_size, gamma: the step schedule (``StepLR``), per epoch.
        epochs: training epochs.
        batch_size: images per step.
        blend_start: the 0-based epoch at which blending starts (epochs before it
            train on the original features only).
        prototype_every: PLRB's prototypes are recomputed at ``blend_start`` and
            every ``prototype_every`` epochs after it.
        num_prototypes: ``K`` per class.
        lam: the contrastive loss's weight.
        frozen: the backbone's leading modules kept frozen (their parameters fixed
            and their BatchNorm in eval mode): ``7`` = conv1 … layer3 of a ResNet
            (:func:`freeze_backbone`); ``"all"`` freezes the whole backbone.
        image_size, resize, crop_sizes: the image pipeline (:func:`sarb_transforms`).
        normalize: end the pipeline with ImageNet's mean and standard deviation
            (the torchvision ResNets' pretraining statistics); the small CNN takes
            images in ``[0, 1]`` as they are.
    """

    lr: float
    weight_decay: float
    step_size: int
    gamma: float
    epochs: int
    batch_size: int
    blend_start: int
    prototype_every: int
    num_prototypes: int
    lam: float
    frozen: int | str
    betas: tuple[float, float] = (0.9, 0.999)
    image_size: int = 448
    resize: int = 512
    crop_sizes: tuple[int, ...] = (512, 448, 384, 320, 256)
    normalize: bool = False


#: SARB's training recipes by name.
SARB_RECIPES: dict[str, SARBRecipe] = {
    "paper": SARBRecipe(lr=1e-5, weight_decay=5e-4, step_size=10, gamma=0.1, epochs=20,
                        batch_size=8, blend_start=5, prototype_every=5, num_prototypes=10,
                        lam=0.05, frozen=7, normalize=True),
    # CPU: the pretrained small CNN with its first two blocks frozen (the analog of
    # conv1 ... layer3), the rest at Adam's usual rate, no step in 12 epochs; the
    # paper's schedule shape: blending after a quarter of the epochs, prototypes
    # refreshed every quarter; 64-px MultiShapes canvases, no augmentation
    "synthetic": SARBRecipe(lr=1e-3, weight_decay=1e-4, step_size=12, gamma=0.1, epochs=12,
                            batch_size=32, blend_start=3, prototype_every=3, num_prototypes=4,
                            lam=0.05, frozen=8, image_size=64, resize=64, crop_sizes=(64,)),
}


#: ImageNet's per-channel mean and standard deviation (torchvision's ResNets).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _backbone_modules(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's leading modules in order (a Sequential's children; a module
    with a Sequential ``.features``, such as the small CNN, its blocks' layers)."""
    seq = backbone if isinstance(backbone, nn.Sequential) else getattr(backbone, "features", None)
    if not isinstance(seq, nn.Sequential):
        raise ValueError(f"freeze_backbone: {type(backbone).__name__} is not a Sequential and "
                         "has no Sequential .features; freeze it with frozen='all'.")
    return list(seq.children())


def freeze_backbone(backbone: nn.Module, frozen: int | str) -> list[nn.Module]:
    """Fix the parameters of the backbone's ``frozen`` leading modules (``"all"``: every
    module) and return the frozen modules, whose BatchNorm layers the caller keeps in
    eval mode (:func:`hmglib.blending.fit_sarb` does).

    Raises:
        ValueError: ``frozen`` is neither ``"all"`` nor an int in ``0..len(modules)``.
    """
    if frozen == "all":
        modules = [backbone]
    else:
        parts = _backbone_modules(backbone)
        if isinstance(frozen, bool) or not isinstance(frozen, int) or not (
                0 <= frozen <= len(parts)):
            raise ValueError(f"freeze_backbone: frozen={frozen!r} must be 'all' or an int in "
                             f"0..{len(parts)} (the backbone's leading modules).")
        modules = parts[:frozen]
    for module in modules:
        for param in module.parameters():
            param.requires_grad_(False)
    return modules


def sarb_optimizer(model: nn.Module, recipe: SARBRecipe,
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
    """Adam over the trainable parameters of ``model`` with the recipe's step schedule."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("sarb_optimizer: the model has no trainable parameter.")
    opt = torch.optim.Adam(params, lr=recipe.lr, betas=recipe.betas,
                           weight_decay=recipe.weight_decay)
    return opt, torch.optim.lr_scheduler.StepLR(opt, recipe.step_size, recipe.gamma)


def sarb_transforms(train: bool, recipe: SARBRecipe) -> v2.Compose:
    """SARB's image pipeline on ``(3, H, W)`` float images in ``[0, 1]`` (or PIL):
    training resizes to ``resize``, crops a random square of a side drawn from
    ``crop_sizes``, resizes it to ``image_size`` and flips; test resizes to
    ``image_size``."""
    size = (recipe.image_size, recipe.image_size)
    start = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    end = ([v2.Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))]
           if recipe.normalize else [])
    if not train:
        return v2.Compose([*start, v2.Resize(size, antialias=True), *end])
    crops = [v2.RandomCrop(c) for c in recipe.crop_sizes]
    return v2.Compose([*start, v2.Resize((recipe.resize, recipe.resize), antialias=True),
                       v2.RandomChoice(crops), v2.Resize(size, antialias=True),
                       v2.RandomHorizontalFlip(), *end])
