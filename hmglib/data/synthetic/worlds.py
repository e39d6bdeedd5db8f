"""The worlds of the data chapter, sized by a run profile and streamed.

:func:`profile_worlds` builds every dataset the data chapter reads from one
:class:`~hmglib.profile.Profile`: the HierShapes worlds at the default object
scale and at RA-CNN's small scale, the MultiShapes world, and the inputs of the
chapter's probes (the canvas resized to half its side, and a crop of that side
centred on the object, :class:`ZoomOnObject`). Nothing is rendered when they
are built: every image is drawn when a DataLoader asks for it, and the probes'
inputs pass through a memory-bounded cache
(:class:`~hmglib.data.cache.CachedDataset`, at most
:attr:`~hmglib.profile.Profile.cache_mib` each), so that a CPU run does not draw
its images again every epoch while the gpu profile's splits (8,100 images of
448 px, about 20 GB as float32) never have to fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from hmglib.checks import check_index, check_int
from hmglib.data.cache import CachedDataset
from hmglib.data.synthetic.hier_shapes import HierBoxes, HierShapes
from hmglib.data.synthetic.multi_shapes import MultiShapes
from hmglib.profile import Profile

__all__ = ["ZoomOnObject", "DataWorlds", "profile_worlds", "SMALL_OBJECT_SCALE"]

#: The object scale of the small-object worlds: RA-CNN's setting, a small object
#: in a large canvas (the default worlds use 0.6).
SMALL_OBJECT_SCALE = 0.3


class ZoomOnObject(Dataset):
    """A square crop of side ``side`` centred on each image's object box, at the
    canvas's own resolution: ``(3, S, S)`` → ``(3, side, side)``.

    Beside the whole canvas resized to ``side`` pixels, the crop shows the object
    ``S / side`` times larger (a 2x zoom at ``side = S / 2``) for the same input
    size. The crop is moved inside the canvas where the object lies near an edge.
    It is the ground-truth analog of RA-CNN's learnt attention crop.

    Args:
        world: a dataset with object boxes (``world.boxes(i).object``, ``xyxy``
            pixels of the canvas, as :class:`HierShapes` gives them), an
            ``image_size`` ``S`` and no image ``transform`` (the boxes are in the
            coordinates of the raw canvas).
        side: the crop's side in pixels, ``1 <= side <= S``.

    Items:
        ``(crop, target)``: crop ``(3, side, side)`` float32 (a copy, not a view
        of the canvas), target as ``world`` gives it.

    Attributes:
        world, side: the arguments; ``tree`` and ``targets`` are the world's.

    Raises:
        ValueError: a world without boxes, with a transform, or a bad ``side``.
    """

    def __init__(self, world: HierShapes, side: int) -> None:
        if not callable(getattr(world, "boxes", None)) or not hasattr(world, "image_size"):
            raise ValueError(f"ZoomOnObject: world ({type(world).__name__}) needs boxes(i) and "
                             "image_size, as HierShapes has them.")
        if getattr(world, "transform", None) is not None:
            raise ValueError("ZoomOnObject: world has an image transform, but its boxes are in "
                             "the raw canvas; pass the world without transform (apply it to the "
                             "crops instead).")
        self.world = world
        self.side = check_int("ZoomOnObject", "side", side, 1)
        if self.side > world.image_size:
            raise ValueError(f"ZoomOnObject: side={side} is larger than the canvas "
                             f"({world.image_size} px); use 1 <= side <= {world.image_size}.")
        self.tree = getattr(world, "tree", None)
        self.targets = getattr(world, "targets", None)

    def __len__(self) -> int:
        return len(self.world)

    def window(self, index: int) -> tuple[int, int]:
        """``(top, left)``: the crop's corner in canvas pixels for sample ``index``."""
        index = check_index("ZoomOnObject", index, len(self))
        box: HierBoxes = self.world.boxes(index)
        x0, y0, x1, y1 = (float(v) for v in box.object)
        size, side = self.world.image_size, self.side
        left = min(max(round((x0 + x1) / 2 - side / 2), 0), size - side)
        top = min(max(round((y0 + y1) / 2 - side / 2), 0), size - side)
        return top, left

    def __getitem__(self, index: int) -> tuple[torch.Tensor, object]:
        top, left = self.window(index)
        image, target = self.world[index]  # (3, S, S)
        crop = image[:, top:top + self.side, left:left + self.side].clone()  # (3, side, side)
        return crop, target

    def __repr__(self) -> str:
        return f"ZoomOnObject({self.world!r}, side={self.side})"


@dataclass(frozen=True)
class DataWorlds:
    """Every dataset of the data chapter, for one profile (see :func:`profile_worlds`).

    Attributes:
        profile: the profile they are sized for.
        hier: HierShapes training split: ``samples_per_class`` images per species
            of ``S = profile.image_size`` pixels, object scale 0.6.
        hier_test: its test split, ``max(10, samples_per_class // 3)`` images per
            species.
        small, small_test: the same splits at object scale
            :data:`SMALL_OBJECT_SCALE` (RA-CNN's small objects).
        multi: MultiShapes training split, ``samples_per_class`` images per class
            (``12 * samples_per_class`` for its 12 classes).
        input_size: the side of the probes' input, ``S // 2``.
        inputs: the probes' inputs, ``name → (train, test)``, each a
            :class:`~hmglib.data.cache.CachedDataset` of ``(3, input_size,
            input_size)`` images: ``"levels"``, ``hier`` resized; ``"full view"``,
            ``small`` resized; ``"2× zoom"``, ``small`` cropped around the object
            (:class:`ZoomOnObject`).
    """

    profile: Profile
    hier: HierShapes
    hier_test: HierShapes
    small: HierShapes
    small_test: HierShapes
    multi: MultiShapes
    input_size: int
    inputs: dict[str, tuple[Dataset, Dataset]]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name} {len(data)}" for name, data in self.datasets().items())
        return (f"DataWorlds({self.profile.name} profile, {self.hier.image_size} px canvases, "
                f"{self.input_size} px inputs; {sizes})")

    def datasets(self) -> dict[str, Dataset]:
        """Every dataset by name: the worlds, and each input as ``"<name>/train"``
        and ``"<name>/test"``."""
        found: dict[str, Dataset] = {name: getattr(self, name)
                                     for name in ("hier", "hier_test", "small", "small_test",
                                                  "multi")}
        for name, (train, test) in self.inputs.items():
            found[f"{name}/train"], found[f"{name}/test"] = train, test
        return found


def _resized(world: HierShapes, side: int) -> HierShapes:
    """The same world (same seed, same images) whose items are resized to ``side``."""
    return HierShapes(world.split, samples_per_class=world.samples_per_class,
                      image_size=world.image_size, object_scale=world.object_scale,
                      clutter=world.clutter, branching=world.branching, cues=world.cues,
                      seed=world.seed, transform=v2.Resize(side, antialias=True))


def profile_worlds(profile: Profile) -> DataWorlds:
    """The data chapter's worlds and probe inputs, sized by ``profile``; nothing is
    rendered until an item is read.

    Sizes: ``n = profile.samples_per_class`` training images per species (and per
    MultiShapes class) of ``S = profile.image_size`` pixels, ``max(10, n // 3)``
    test images per species, probe inputs of ``S // 2`` pixels. Every world uses
    seed 0 and clutter 2 (up to two distractors).

    Memory: the worlds hold no image; each of the six probe inputs keeps at most
    ``profile.cache_mib`` MiB of images, in the main process only (see
    :class:`~hmglib.data.cache.CachedDataset`). In the gpu profile (n = 300,
    S = 448) that bounds the chapter's images in memory at 6 x 512 MiB = 3 GiB,
    where stacking the training split alone would take 8,100 x 3 x 448² x 4
    bytes, about 20 GB.

    Args:
        profile: a run profile (:func:`hmglib.profile.current` for the
            environment's).

    Returns:
        :class:`DataWorlds`.

    Raises:
        ValueError: ``profile`` is not a :class:`~hmglib.profile.Profile`.
    """
    if not isinstance(profile, Profile):
        raise ValueError(f"profile_worlds: profile must be a hmglib.profile.Profile (e.g. "
                         f"hmglib.profile.current()), got {type(profile).__name__}.")
    n, size = profile.samples_per_class, profile.image_size
    n_test = max(10, n // 3)
    common = dict(image_size=size, clutter=2, seed=0)
    hier = HierShapes("train", samples_per_class=n, **common)
    hier_test = HierShapes("test", samples_per_class=n_test, **common)
    small = HierShapes("train", samples_per_class=n, object_scale=SMALL_OBJECT_SCALE, **common)
    small_test = HierShapes("test", samples_per_class=n_test,
                            object_scale=SMALL_OBJECT_SCALE, **common)
    multi = MultiShapes("train", num_images=12 * n, image_size=size, seed=0)
    side = size // 2
    budget = profile.cache_mib * 2**20

    def cached(data: Dataset) -> CachedDataset:
        return CachedDataset(data, budget)

    inputs = {
        "levels": (cached(_resized(hier, side)), cached(_resized(hier_test, side))),
        "full view": (cached(_resized(small, side)), cached(_resized(small_test, side))),
        "2× zoom": (cached(ZoomOnObject(small, side)), cached(ZoomOnObject(small_test, side))),
    }
    return DataWorlds(profile, hier, hier_test, small, small_test, multi, side, inputs)
