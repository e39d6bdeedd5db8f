"""MultiShapes: a multi-label world with a known co-occurrence structure.

Each canvas shows 1–4 objects from ``C`` classes (12 by default). A class is a
(silhouette, colour family) pair: every silhouette comes in two colours and
every colour on two silhouettes, so neither cue alone names a class.

**Co-occurrence.** The classes are split into *groups* (scenes) of
``group_size`` consecutive classes (4 groups of 3 by default). An image picks
a group uniformly, a number of objects ``k`` uniformly in ``1..max_objects``,
and then each object's class independently: from the image's group with
probability ``cohesion`` (uniformly inside it), otherwise uniformly from the
other classes. Classes of one group therefore tend to appear together, and the
conditional co-occurrence ``P(j present | i present)`` that SARB's label graph
estimates from the training labels has a closed form,
:meth:`MultiShapes.cooccurrence`.

Objects sit in distinct cells of a 2 x 2 grid (jittered inside their cell),
so none hides another; every object has a box. An image is a pure function of
``(seed, split, index)``, like :class:`~hmglib.data.synthetic.hier_shapes.HierShapes`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from hmglib.checks import check_choice, check_index, check_int, check_real, check_seed
from hmglib.data.synthetic import render
from hmglib.data.synthetic.hier_shapes import SPLITS

__all__ = ["MultiShapes", "ObjectBoxes", "class_cues", "empirical_cooccurrence"]

_MAX_CLASSES = len(render.SILHOUETTES) * len(render.HUES)
_HUE_SHIFTS = (0, 3, 1, 4, 2, 5)  # class c uses hue (c % 6 + shift[c // 6]) % 6
_HUE_JITTER = 10.0
_NOISE = 0.03
_N_FIXED = 13  # uniforms per image before the objects
_PER_OBJECT = 9
_GRID = 2  # objects sit in the cells of a 2 x 2 grid


class ObjectBoxes(NamedTuple):
    """The objects of one MultiShapes image.

    Attributes:
        boxes: ``(K, 4)`` float32, one float pixel ``xyxy`` box per object
            (pixel ``j`` spans ``[j, j + 1)``), in drawing order.
        labels: ``(K,)`` int64, the class of each object in ``0..C-1``.
    """

    boxes: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class _Params:
    classes: tuple[int, ...]
    objects: tuple[tuple[float, float, float, float, np.ndarray], ...]  # cx, cy, R, angle, rgb
    bg0: np.ndarray
    bg1: np.ndarray
    bg_angle: float
    noise_xy: tuple[int, int]


def class_cues(num_classes: int) -> list[tuple[str, str]]:
    """The ``(silhouette, colour)`` of each of the first ``num_classes`` classes.

    Class ``c`` has silhouette ``SILHOUETTES[c % 6]`` and colour family
    ``(c % 6 + shift[c // 6]) % 6`` with shifts ``0, 3, 1, 4, 2, 5``: 36 distinct
    pairs, and for 12 classes every silhouette appears in two colours.
    """
    hues = list(render.HUES)
    n_shape = len(render.SILHOUETTES)
    return [
        (render.SILHOUETTES[c % n_shape], hues[(c % n_shape + _HUE_SHIFTS[c // n_shape]) % 6])
        for c in range(num_classes)
    ]


class MultiShapes(Dataset):
    """The multi-label synthetic world: ``(image, target)`` with ``target`` ``(C,)``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint random streams).
        num_images: the number of images.
        num_classes: ``C`` in ``2..36``.
        group_size: classes per co-occurrence group (consecutive class ids;
            the last group may be smaller), in ``1..C``.
        cohesion: the probability that an object comes from the image's group,
            in ``[0, 1]``; ``group_size / C`` gives no structure (every class equally
            likely), 1 only in-group objects.
        max_objects: objects per image are uniform in ``1..max_objects`` (``<= 4``).
        image_size: side ``S`` of the canvas in pixels (``>= 16``).
        object_scale: body length as a fraction of the canvas side, in ``(0, 0.45]``
            (each object stays inside its grid cell).
        seed: the world's seed.
        transform: optional callable applied to the image tensor.
        target_transform: optional callable applied to the target.

    Items:
        ``ds[i]`` is ``(image, target)``: image ``(3, S, S)`` float32 in ``[0, 1]``,
        target ``(C,)`` float32 in ``{0, 1}`` (1 where at least one object of the
        class is present).

    Attributes:
        class_names: ``C`` names such as ``"red ellipse"``.
        groups: the co-occurrence groups, lists of class ids.
        targets: ``(len, C)`` float32 in ``{0, 1}``, every label (no rendering).
    """

    def __init__(
        self,
        split: str = "train",
        num_images: int = 1000,
        num_classes: int = 12,
        group_size: int = 3,
        cohesion: float = 0.8,
        max_objects: int = 4,
        image_size: int = 64,
        object_scale: float = 0.35,
        seed: int = 0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        owner = "MultiShapes"
        check_choice(owner, "split", split, SPLITS)
        num_images = check_int(owner, "num_images", num_images, 1)
        num_classes = check_int(owner, "num_classes", num_classes, 2)
        if num_classes > _MAX_CLASSES:
            raise ValueError(f"MultiShapes: num_classes={num_classes} must be <= {_MAX_CLASSES} "
                             "(6 silhouettes x 6 colour families).")
        group_size = check_int(owner, "group_size", group_size, 1)
        if group_size > num_classes:
            raise ValueError(f"MultiShapes: group_size={group_size} must be <= num_classes="
                             f"{num_classes}.")
        max_objects = check_int(owner, "max_objects", max_objects, 1)
        if max_objects > _GRID * _GRID:
            raise ValueError(f"MultiShapes: max_objects={max_objects} must be <= "
                             f"{_GRID * _GRID} (one object per grid cell).")
        image_size = check_int(owner, "image_size", image_size, 16)
        seed = check_seed(owner, seed)
        cohesion = check_real(owner, "cohesion", cohesion, 0.0, 1.0)
        object_scale = check_real(owner, "object_scale", object_scale, 0.0, 0.45,
                                  closed_low=False, hint="each object stays inside its grid cell")
        self.split = split
        self.num_images = int(num_images)
        self.num_classes = int(num_classes)
        self.group_size = int(group_size)
        self.cohesion = float(cohesion)
        self.max_objects = int(max_objects)
        self.image_size = int(image_size)
        self.object_scale = float(object_scale)
        self.seed = int(seed)
        self.transform = transform
        self.target_transform = target_transform
        self.cues = class_cues(self.num_classes)
        self.class_names = [f"{hue} {shape}" for shape, hue in self.cues]
        self.groups = [list(range(g, min(g + self.group_size, self.num_classes)))
                       for g in range(0, self.num_classes, self.group_size)]
        self._class_cdf = [np.cumsum(q).tolist() for q in self._class_probs()]  # per group
        self._canvas = render.canvas(self.image_size)
        self._targets: torch.Tensor | None = None

    # --------------------------------------------------------------- dataset
    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self._check_index(index)
        p = self._params(index)
        image = torch.from_numpy(self._render(p))  # (3, S, S)
        target: object = self._multi_hot(p.classes)  # (C,)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    @property
    def targets(self) -> torch.Tensor:
        """``(len, C)`` float32 in ``{0, 1}``: the complete labels, in dataset order
        (computed once from the random choices, without rendering)."""
        if self._targets is None:
            rows = [self._multi_hot(self._params(i).classes) for i in range(len(self))]
            self._targets = torch.stack(rows)  # (len, C)
        return self._targets.clone()

    def boxes(self, index: int) -> ObjectBoxes:
        """The box and class of every object of sample ``index`` (see
        :class:`ObjectBoxes`), in the rendered canvas's coordinates."""
        p = self._params(self._check_index(index))
        boxes = [render.silhouette_box(self.cues[c][0], cx, cy, radius, angle)
                 for c, (cx, cy, radius, angle, _) in zip(p.classes, p.objects, strict=True)]
        return ObjectBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                           torch.tensor(p.classes, dtype=torch.long))

    def render(self, index: int) -> np.ndarray:
        """The raw image of sample ``index``: ``(3, S, S)`` float32 NumPy array in ``[0, 1]``."""
        return self._render(self._params(self._check_index(index)))

    # ---------------------------------------------------------- structure
    def _class_probs(self) -> np.ndarray:
        """``(G, C)`` float64: the class distribution of one object given the group."""
        q = np.zeros((len(self.groups), self.num_classes))
        for g, members in enumerate(self.groups):
            others = self.num_classes - len(members)
            inside = self.cohesion if others else 1.0
            q[g] = (1.0 - inside) / others if others else 0.0
            q[g, members] = inside / len(members)
        return q

    def cooccurrence(self) -> torch.Tensor:
        """The exact conditional co-occurrence of the generative model.

        Returns:
            ``(C, C)`` float64, entry ``[i, j] = P(class j present | class i present)``
            (diagonal 1). With ``q = P(one object is class i | group)`` and ``k``
            objects, ``P(i) = E[1 - (1 - q_i)^k]`` and ``P(i, j) = E[1 - (1 - q_i)^k -
            (1 - q_j)^k + (1 - q_i - q_j)^k]``, the expectation over the uniform
            group and the uniform ``k``.
        """
        q = self._class_probs()  # (G, C)
        ks = np.arange(1, self.max_objects + 1, dtype=np.float64)[:, None, None, None]  # (K,1,1,1)
        qi = q[None, :, :, None]  # (1, G, C, 1)
        qj = q[None, :, None, :]  # (1, G, 1, C)
        absent_i = (1 - qi) ** ks  # (K, G, C, 1)
        absent_j = (1 - qj) ** ks  # (K, G, 1, C)
        absent_both = np.clip(1 - qi - qj, 0, None) ** ks  # (K, G, C, C)
        joint = (1 - absent_i - absent_j + absent_both).mean(axis=(0, 1))  # (C, C)
        single = (1 - absent_i[..., 0]).mean(axis=(0, 1))  # (C,)
        cond = joint / single[:, None]  # (C, C)
        np.fill_diagonal(cond, 1.0)
        return torch.from_numpy(cond)

    # -------------------------------------------------------------- helpers
    def _check_index(self, index: int) -> int:
        return check_index("MultiShapes", index, len(self))

    def _multi_hot(self, classes: tuple[int, ...]) -> torch.Tensor:
        y = torch.zeros(self.num_classes, dtype=torch.float32)  # (C,)
        y[list(classes)] = 1.0
        return y

    def _params(self, index: int) -> _Params:
        rng = np.random.default_rng([self.seed, SPLITS[self.split], index])
        r = rng.random(_N_FIXED + _PER_OBJECT * self.max_objects).tolist()
        size = self.image_size
        group = min(int(r[0] * len(self.groups)), len(self.groups) - 1)
        k = 1 + min(int(r[1] * self.max_objects), self.max_objects - 1)
        cdf = self._class_cdf[group]
        cells = sorted(range(_GRID * _GRID), key=lambda c: r[2 + c])[:k]  # distinct cells
        cell = size / _GRID
        hues = render.HUES
        classes, objects = [], []
        for j in range(k):
            d = r[_N_FIXED + _PER_OBJECT * j: _N_FIXED + _PER_OBJECT * (j + 1)]
            c = min(bisect.bisect_right(cdf, d[0] * cdf[-1]), self.num_classes - 1)
            shape, hue_name = self.cues[c]
            radius = 0.5 * self.object_scale * size * (0.85 + 0.15 * d[1])
            angle = 2 * math.pi * d[2]
            x0, y0, x1, y1 = render.silhouette_box(shape, 0.0, 0.0, radius, angle)
            row, col = divmod(cells[j], _GRID)
            cx = col * cell - x0 + d[3] * max(0.0, cell - (x1 - x0))  # inside its cell
            cy = row * cell - y0 + d[4] * max(0.0, cell - (y1 - y0))
            hue = hues[hue_name] + (2 * d[5] - 1) * _HUE_JITTER
            rgb = render.hsv(hue, 0.55 + 0.4 * d[6], 0.6 + 0.35 * d[7])
            classes.append(c)
            objects.append((cx, cy, radius, angle, rgb))
        bg_hue = 360.0 * r[6]
        bg0 = render.hsv(bg_hue, 0.25 * r[7], 0.25 + 0.6 * r[8])
        bg1 = render.hsv(bg_hue + 40.0, 0.25 * r[7], 0.25 + 0.6 * r[9])
        noise_xy = (int(r[11] * size), int(r[12] * size))
        return _Params(tuple(classes), tuple(objects), bg0, bg1, 2 * math.pi * r[10], noise_xy)

    def _render(self, p: _Params) -> np.ndarray:
        cv = self._canvas
        img = render.background(cv, p.bg0, p.bg1, p.bg_angle)  # (3, S, S)
        for c, (cx, cy, radius, angle, rgb) in zip(p.classes, p.objects, strict=True):
            render.paint_silhouette(img, cv, self.cues[c][0], cx, cy, radius, angle, rgb)
        return render.add_noise(img, cv, *p.noise_xy, _NOISE)

    def __repr__(self) -> str:
        return (
            f"MultiShapes(split={self.split!r}, {len(self)} images of {self.image_size}px, "
            f"{self.num_classes} classes in {len(self.groups)} groups, "
            f"cohesion={self.cohesion}, seed={self.seed})"
        )


def empirical_cooccurrence(labels: torch.Tensor) -> torch.Tensor:
    """Conditional co-occurrence estimated from labels, as SARB's label graph is.

    Args:
        labels: ``(N, C)`` in ``{1, 0, -1}`` (known positive, unknown, known
            negative) or complete ``{0, 1}``; only known positives are counted.

    Returns:
        ``(C, C)`` float64, ``[i, j] = #(i and j known positive) / #(i known positive)``
        (0 on rows of classes never seen positive; diagonal 1 where seen).

    Raises:
        ValueError: ``labels`` is not 2-D or holds other values.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 2:
        raise ValueError(f"empirical_cooccurrence: labels must be (N, C), got shape "
                         f"{tuple(labels.shape)}.")
    bad = ~((labels == 1) | (labels == 0) | (labels == -1))
    if bad.any():
        raise ValueError("empirical_cooccurrence: labels must hold only 1, 0 and -1; found "
                         f"{labels[bad].flatten()[:5].tolist()}.")
    pos = (labels == 1).double()  # (N, C)
    joint = pos.T @ pos  # (C, C)
    count = joint.diagonal().clone()  # (C,)
    return torch.where(count[:, None] > 0, joint / count.clamp(min=1)[:, None],
                       torch.zeros_like(joint))
