"""HierShapes: a hierarchical world with ground truth for where the evidence is.

A three-level tree shaped like CUB (order → family → species). Every image
shows one object:

* the **order** decides the body silhouette (ellipse, triangle, diamond, ...);
* the **family** decides the colour family (red, yellow, green, ...), shared
  across orders, so a family is a (silhouette, colour) pair;
* the **species** decides a small dark marking (spot, ring, bar, ...) at a
  fixed place on the body: the "part", 2–6 % of the image at the default
  object scale. Markings are shared across families, so a species needs all
  three cues.

Pose (facing left or right, tilted up to ±30°), scale (±10 %), colour jitter
(hue ±10°, saturation, value), a gradient background, sensor noise and
distractor shapes (smaller, unmarked, behind the object) keep it from being
trivial. Every sample carries its object box and part box.

An image is a pure function of ``(seed, split, index)``: its random numbers
come from ``numpy.random.default_rng([seed, split_id, index])`` (with the cue
set's number appended for the worlds other than the book's, so that the
pretraining world never repeats a book image's pose, background or noise), so
any worker order, any subset and any process give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from hmglib.checks import check_choice, check_index, check_int, check_real, check_seed
from hmglib.data.synthetic import render
from hmglib.hierarchy import LabelTree

__all__ = ["HierShapes", "HierBoxes", "SPLITS", "CUE_SETS", "hier_shapes_tree"]

#: Split name → the stream id that keeps splits disjoint.
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

#: Cue set name → the first (silhouette, colour family, marking) of the renderer's
#: tables it draws from. ``"book"`` is the world of every experiment of the book
#: (ellipse/triangle/diamond bodies). ``"pretraining"`` starts at the other three
#: silhouettes (rectangle/plus/hexagon) and may use every colour and marking
#: (``branching=(3, 6, 6)``: 108 species): no class and no order of it is one of
#: the book's, while the low-level cues are shared. It is the book's analog of
#: ImageNet, on which the small backbone is pretrained (:mod:`hmglib.pretraining`).
#: ``"pretraining-disjoint"`` shares nothing (rectangle/plus/hexagon x
#: cyan/blue/magenta x cross/checker/frame), the first design, kept for comparison.
CUE_SETS: dict[str, tuple[int, int, int]] = {
    "book": (0, 0, 0), "pretraining": (3, 0, 0), "pretraining-disjoint": (3, 3, 3)}

_MAX_TILT = math.radians(30.0)
_SCALE_JITTER = 0.1  # radius x U(0.9, 1.1)
_HUE_JITTER = 10.0  # degrees
_NOISE = 0.03  # sensor noise standard deviation
_N_FIXED = 17  # uniforms per image before the distractors
_PER_DISTRACTOR = 8


class HierBoxes(NamedTuple):
    """The ground-truth evidence of one HierShapes image, in float pixel ``xyxy``
    coordinates of the rendered canvas (pixel ``j`` spans ``[j, j + 1)``).

    Attributes:
        object: ``(4,)`` float32, the box of the object's body.
        part: ``(4,)`` float32, the box of the marking square (inside ``object``).
    """

    object: torch.Tensor
    part: torch.Tensor


@dataclass(frozen=True)
class _Params:
    """Every random choice of one image (drawn before any pixel is painted)."""

    leaf: int
    cx: float
    cy: float
    radius: float
    angle: float
    body_rgb: np.ndarray
    ink_rgb: np.ndarray
    bg0: np.ndarray
    bg1: np.ndarray
    bg_angle: float
    noise_xy: tuple[int, int]
    distractors: tuple[tuple[str, float, float, float, float, np.ndarray], ...]


def hier_shapes_tree(branching: Sequence[int] = (3, 3, 3), cues: str = "book") -> LabelTree:
    """The label tree of a HierShapes world.

    Args:
        branching: ``(orders, families per order, species per family)``, each at
            least 1 and at most what the cue set leaves of the renderer's tables
            (6 silhouettes, colour families and markings from ``"book"``; 3
            silhouettes and 6 colours and markings from ``"pretraining"``).
        cues: the cue set, a key of :data:`CUE_SETS`.

    Returns:
        A tree with levels ``("order", "family", "species")``: order ``o`` is the
        silhouette ``SILHOUETTES[o0 + o]``; family ``(o, f)`` is named
        ``"<colour> <silhouette>"``; species ``(o, f, s)`` is named
        ``"<colour> <silhouette> + <marking>"`` (``o0`` and the other offsets from
        :data:`CUE_SETS`). Leaves are in ``(o, f, s)`` order.
    """
    n_o, n_f, n_s = _check_branching(branching, cues)
    s0, h0, m0 = CUE_SETS[cues]
    hues = list(render.HUES)
    paths = []
    for o in range(n_o):
        shape = render.SILHOUETTES[s0 + o]
        for f in range(n_f):
            family = f"{hues[h0 + f]} {shape}"
            for s in range(n_s):
                paths.append((shape, family, f"{family} + {render.MARKINGS[m0 + s]}"))
    return LabelTree.from_paths(paths, ["order", "family", "species"])


def _check_branching(branching: Sequence[int], cues: str = "book") -> tuple[int, int, int]:
    check_choice("HierShapes", "cues", cues, CUE_SETS)
    tables = (len(render.SILHOUETTES), len(render.HUES), len(render.MARKINGS))
    limits = tuple(n - first for n, first in zip(tables, CUE_SETS[cues], strict=True))
    ok = (
        isinstance(branching, Sequence)
        and len(branching) == 3
        and all(isinstance(b, int) and not isinstance(b, bool) for b in branching)
    )
    if not ok or not all(1 <= b <= m for b, m in zip(branching, limits, strict=True)):
        raise ValueError(
            f"HierShapes: branching={branching!r} must be three ints (orders, families per "
            f"order, species per family) with 1 <= each <= {limits} (the silhouettes, "
            f"colour families and markings the cue set {cues!r} leaves)."
        )
    return int(branching[0]), int(branching[1]), int(branching[2])


class HierShapes(Dataset):
    """The hierarchical synthetic world: ``(image, target)`` pairs over a 3-level tree.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``; splits draw from disjoint random
            streams, so they share no image.
        samples_per_class: images per species; ``len(ds) = samples_per_class * species``.
        image_size: side ``S`` of the square canvas in pixels (``>= 16``).
        object_scale: the body length as a fraction of the canvas side, in
            ``(0, 0.8]`` (0.6 by default; about 0.3 gives the small objects of
            RA-CNN's setting, whose marking is a few pixels wide).
        clutter: the largest number of distractor shapes per image (each image
            draws ``0..clutter`` uniformly); 0 for clean images.
        branching: ``(orders, families per order, species per family)``, see
            :func:`hier_shapes_tree`.
        cues: ``"book"`` (the default world), ``"pretraining"`` (other bodies:
            no class in common with the book's) or ``"pretraining-disjoint"``
            (no silhouette, colour or marking in common); see :data:`CUE_SETS`.
        seed: the world's seed; the same seed gives byte-identical images.
        transform: optional callable applied to the image tensor.
        target_transform: optional callable applied to the target.

    Items:
        ``ds[i]`` is ``(image, target)``: image ``(3, S, S)`` float32 in ``[0, 1]``
        (or whatever ``transform`` returns), target the leaf's node index in
        :attr:`tree` (an int; int64 under ``torch.utils.data.default_collate``).
        Sample ``i`` belongs to species ``i % num_species``, so every prefix of the
        dataset is balanced.

    Attributes:
        tree: the :class:`~hmglib.hierarchy.LabelTree` (see :func:`hier_shapes_tree`).
        targets: ``(len,)`` int64, the leaf node index of every sample (no rendering).
    """

    def __init__(
        self,
        split: str = "train",
        samples_per_class: int = 100,
        image_size: int = 64,
        object_scale: float = 0.6,
        clutter: int = 2,
        branching: Sequence[int] = (3, 3, 3),
        cues: str = "book",
        seed: int = 0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        owner = "HierShapes"
        check_choice(owner, "split", split, SPLITS)
        samples_per_class = check_int(owner, "samples_per_class", samples_per_class, 1)
        image_size = check_int(owner, "image_size", image_size, 16)
        clutter = check_int(owner, "clutter", clutter, 0)
        seed = check_seed(owner, seed)
        object_scale = check_real(
            owner, "object_scale", object_scale, 0.0, 0.8, closed_low=False,
            hint="the body length as a fraction of the canvas; larger bodies would leave the "
                 "canvas when tilted")
        self.branching = _check_branching(branching, cues)
        self.cues = cues
        self.tree = hier_shapes_tree(self.branching, cues)
        self.split = split
        self.samples_per_class = int(samples_per_class)
        self.image_size = int(image_size)
        self.object_scale = float(object_scale)
        self.clutter = int(clutter)
        self.seed = int(seed)
        self.transform = transform
        self.target_transform = target_transform
        self.num_species = len(self.tree.leaves)
        self._leaf_offset = self.tree.offset(-1)
        self._canvas = render.canvas(self.image_size)
        self._hue_names = list(render.HUES)

    # --------------------------------------------------------------- dataset
    def __len__(self) -> int:
        return self.samples_per_class * self.num_species

    @property
    def targets(self) -> torch.Tensor:
        """``(len,)`` int64: the leaf node index of every sample, in dataset order."""
        return torch.arange(len(self)) % self.num_species + self._leaf_offset  # (len,)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = self._check_index(index)
        image = torch.from_numpy(self.render(index))  # (3, S, S)
        target: object = self._leaf_offset + index % self.num_species
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def boxes(self, index: int) -> HierBoxes:
        """The object box and part box of sample ``index`` (see :class:`HierBoxes`),
        in the coordinates of the rendered ``S x S`` canvas (before any transform)."""
        p = self._params(self._check_index(index))
        shape = render.SILHOUETTES[self._cues(p.leaf)[0]]
        obj = render.silhouette_box(shape, p.cx, p.cy, p.radius, p.angle)
        part = render.marking_box(p.cx, p.cy, p.radius, p.angle)
        return HierBoxes(torch.tensor(obj, dtype=torch.float32),
                         torch.tensor(part, dtype=torch.float32))

    def render(self, index: int) -> np.ndarray:
        """The raw image of sample ``index``: ``(3, S, S)`` float32 NumPy array in
        ``[0, 1]`` (no transform)."""
        p = self._params(self._check_index(index))
        cv = self._canvas
        o, _, s = self._cues(p.leaf)
        img = render.background(cv, p.bg0, p.bg1, p.bg_angle)  # (3, S, S)
        for shape, cx, cy, radius, angle, rgb in p.distractors:
            render.paint_silhouette(img, cv, shape, cx, cy, radius, angle, rgb)
        render.paint_silhouette(img, cv, render.SILHOUETTES[o], p.cx, p.cy, p.radius, p.angle,
                                p.body_rgb)
        render.paint_marking(img, cv, render.MARKINGS[s], p.cx, p.cy, p.radius, p.angle,
                             p.ink_rgb)
        return render.add_noise(img, cv, *p.noise_xy, _NOISE)

    # -------------------------------------------------------------- helpers
    def _check_index(self, index: int) -> int:
        return check_index("HierShapes", index, len(self))

    def _cues(self, leaf: int) -> tuple[int, int, int]:
        """(silhouette, colour family, marking) indices into the renderer's tables
        of a leaf class."""
        _, n_f, n_s = self.branching
        s0, h0, m0 = CUE_SETS[self.cues]
        return s0 + leaf // (n_f * n_s), h0 + (leaf // n_s) % n_f, m0 + leaf % n_s

    def _params(self, index: int) -> _Params:
        key = [self.seed, SPLITS[self.split], index]
        if self.cues != "book":  # the other worlds draw from streams of their own
            key.append(list(CUE_SETS).index(self.cues))
        rng = np.random.default_rng(key)
        r = rng.random(_N_FIXED + _PER_DISTRACTOR * self.clutter).tolist()
        size = self.image_size
        leaf = index % self.num_species
        o, f, _ = self._cues(leaf)
        angle = (math.pi if r[0] < 0.5 else 0.0) + (2 * r[1] - 1) * _MAX_TILT
        radius = 0.5 * self.object_scale * size * (1 + _SCALE_JITTER * (2 * r[2] - 1))
        x0, y0, x1, y1 = render.silhouette_box(render.SILHOUETTES[o], 0.0, 0.0, radius, angle)
        cx = -x0 + r[3] * (size - (x1 - x0))  # the whole body inside the canvas
        cy = -y0 + r[4] * (size - (y1 - y0))
        hue = render.HUES[self._hue_names[f]] + (2 * r[5] - 1) * _HUE_JITTER
        body = render.hsv(hue, 0.55 + 0.4 * r[6], 0.6 + 0.35 * r[7])
        ink = render.hsv(0.0, 0.0, 0.05 + 0.12 * r[8])
        bg_hue = 360.0 * r[9]
        bg0 = render.hsv(bg_hue, 0.3 * r[10], 0.25 + 0.6 * r[11])
        bg1 = render.hsv(bg_hue + 40.0, 0.3 * r[10], 0.25 + 0.6 * r[12])
        noise_xy = (int(r[14] * size), int(r[15] * size))
        n_dis = min(self.clutter, int(r[16] * (self.clutter + 1)))
        distractors = []
        for k in range(n_dis):
            d = r[_N_FIXED + _PER_DISTRACTOR * k: _N_FIXED + _PER_DISTRACTOR * (k + 1)]
            shape = render.SILHOUETTES[min(int(d[0] * 6), 5)]
            rgb = render.hsv(360.0 * d[1], 0.3 + 0.6 * d[2], 0.4 + 0.5 * d[3])
            d_radius = radius * (0.3 + 0.25 * d[4])
            distractors.append((shape, d[6] * size, d[7] * size, d_radius, 2 * math.pi * d[5],
                                rgb))
        return _Params(leaf, cx, cy, radius, angle, body, ink, bg0, bg1, 2 * math.pi * r[13],
                       noise_xy, tuple(distractors))

    def __repr__(self) -> str:
        return (
            f"HierShapes(split={self.split!r}, {len(self)} images of {self.image_size}px, "
            f"{self.num_species} species, object_scale={self.object_scale}, "
            f"clutter={self.clutter}, cues={self.cues!r}, seed={self.seed})"
        )
