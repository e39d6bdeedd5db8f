"""Run profiles: how big every experiment of the book is.

Three profiles, chosen by the environment, never by ad-hoc flags in a chapter:

* ``quick`` (``HMG_QUICK=1``): the tests; each chapter runs in seconds.
* ``cpu`` (the default): the book build; real results in minutes on 2 cores.
* ``gpu`` (``HMG_PROFILE=gpu``): paper scale on a CUDA device.

``HMG_PROFILE`` names a profile explicitly; ``HMG_QUICK=1`` wins over it, so the
test suite is quick whatever else is set.

A profile is the one place that holds every size of the book: the data
chapter's worlds and probes (:class:`Profile`'s own fields), the training runs
of the HRN chapters (:attr:`Profile.run`, read by
:func:`hmglib.experiments.profile_run`), the seeds every claim runs over
(:attr:`Profile.seeds`) and the memory a streaming cache may hold
(:attr:`Profile.cache_mib`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Profile", "RunSizes", "ZoomSizes", "BlendSizes", "CamSizes", "PROFILES", "get",
           "current"]


@dataclass(frozen=True)
class RunSizes:
    """The sizes of one training run of the HRN chapters
    (:class:`hmglib.experiments.HierRun`; :func:`hmglib.experiments.profile_run`
    starts from them).

    Attributes:
        epochs: training epochs of a run.
        samples_per_class: HierShapes training images per species (the test split
            has half as many, at least 4).
        image_size: side ``S`` of the rendered images in pixels.
        batch_size: training batch size.
    """

    epochs: int
    samples_per_class: int
    image_size: int
    batch_size: int


@dataclass(frozen=True)
class ZoomSizes:
    """The sizes of one RA-CNN run of the attention chapter
    (:class:`hmglib.experiments.ZoomRun`; :func:`hmglib.experiments.profile_zoom`
    starts from them).

    Attributes:
        canvas: side of the rendered HierShapes canvas in pixels (small objects,
            object scale 0.3).
        input_sizes: the input side of each of the three scales (the paper:
            448, 224, 224).
        samples_per_class: training images per species (the test split has a
            third as many, at least 4).
        scale_epochs, cls_epochs, apn_epochs, rounds: the schedule's lengths
            (:class:`~hmglib.recipes.RACNNRecipe`); the APN initialisation keeps
            the recipe's.
        apn_hidden: the APNs' hidden width (1024 in the paper).
    """

    canvas: int
    input_sizes: tuple[int, int, int]
    samples_per_class: int
    scale_epochs: int
    cls_epochs: int
    apn_epochs: int
    rounds: int
    apn_hidden: int


@dataclass(frozen=True)
class BlendSizes:
    """The sizes of one SARB run of the representation-blending chapter
    (:class:`hmglib.experiments.BlendRun`; :func:`hmglib.experiments.profile_blend`
    starts from them).

    Attributes:
        known: the shares of known training labels the chapter sweeps.
        num_images, test_images: MultiShapes training and test images.
        image_size: side of the canvas in pixels.
        epochs, blend_start, prototype_every: the schedule
            (:class:`~hmglib.recipes.SARBRecipe`).
        num_prototypes: ``K`` per class.
        feature_dim, hidden: SARB's feature width ``D`` and attention width ``H``.
    """

    known: tuple[float, ...]
    num_images: int
    test_images: int
    image_size: int
    epochs: int
    blend_start: int
    prototype_every: int
    num_prototypes: int
    feature_dim: int
    hidden: int


@dataclass(frozen=True)
class CamSizes:
    """The sizes of the Grad-CAM chapter's maps (:class:`hmglib.experiments.CamRun`;
    :func:`hmglib.experiments.profile_cams` starts from them).

    Attributes:
        image_size: the canvas of the HRN runs explained (their backbone map is
            ``image_size / 8`` on a side: 8 x 8 at 64 px).
        images: test images explained per run (SARB: per image, each class present).
        known: the known label share of the SARB runs explained.
        methods: the CAM methods (keys of :data:`hmglib.cam.METHODS`).
    """

    image_size: int
    images: int
    known: float
    methods: tuple[str, ...] = ("gradcam", "gradcam++", "scorecam")


@dataclass(frozen=True)
class Profile:
    """The sizes one run profile gives every experiment.

    Attributes:
        name: ``"quick"``, ``"cpu"`` or ``"gpu"``.
        epochs: training epochs of the data chapter's probes.
        samples_per_class: synthetic training images per leaf class of the data
            chapter's worlds (see :func:`hmglib.data.synthetic.worlds.profile_worlds`).
        image_size: side ``S`` of those worlds' images in pixels.
        batch_size: training batch size of the data chapter's probes.
        num_workers: DataLoader workers.
        time_budget_s: the wall-clock budget of one chapter in this profile.
        run: the sizes of the HRN chapters' training runs (:class:`RunSizes`).
        seeds: the seeds every claim runs over (at least 3 in the cpu and gpu
            profiles; 2 in the quick profile, which only tests the code).
        cache_mib: the most memory, in MiB, that one streaming cache
            (:class:`hmglib.data.cache.CachedDataset`) may hold.
        zoom: the sizes of the attention chapter's RA-CNN runs (:class:`ZoomSizes`).
        blend: the sizes of the representation-blending chapter's SARB runs
            (:class:`BlendSizes`).
        cam: the sizes of the Grad-CAM chapter's maps (:class:`CamSizes`).
    """

    name: str
    epochs: int
    samples_per_class: int
    image_size: int
    batch_size: int
    num_workers: int
    time_budget_s: float
    run: RunSizes
    seeds: tuple[int, ...]
    cache_mib: int
    zoom: ZoomSizes
    blend: BlendSizes
    cam: CamSizes


#: The run profiles by name: ``quick``, ``cpu`` and ``gpu``.
PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", epochs=1, samples_per_class=8, image_size=32, batch_size=32,
                     num_workers=0, time_budget_s=45.0,
                     run=RunSizes(epochs=1, samples_per_class=6, image_size=32, batch_size=16),
                     seeds=(0, 1), cache_mib=64,
                     zoom=ZoomSizes(canvas=32, input_sizes=(16, 16, 16), samples_per_class=4,
                                    scale_epochs=1, cls_epochs=1, apn_epochs=1, rounds=1,
                                    apn_hidden=16),
                     blend=BlendSizes(known=(0.1, 0.9), num_images=64, test_images=32,
                                      image_size=32, epochs=2, blend_start=1,
                                      prototype_every=1, num_prototypes=2, feature_dim=16,
                                      hidden=8),
                     cam=CamSizes(image_size=32, images=4, known=0.5)),
    "cpu": Profile("cpu", epochs=8, samples_per_class=150, image_size=64, batch_size=64,
                   num_workers=0, time_budget_s=240.0,
                   run=RunSizes(epochs=5, samples_per_class=30, image_size=32, batch_size=32),
                   seeds=(0, 1, 2), cache_mib=512,
                   # a 64-px canvas: scale 1 sees it at half resolution, the crops at full
                   zoom=ZoomSizes(canvas=64, input_sizes=(32, 32, 32), samples_per_class=40,
                                  scale_epochs=4, cls_epochs=3, apn_epochs=2, rounds=2,
                                  apn_hidden=128),
                   # 64-px canvases (an 8 x 8 map, 4 x 4 after the pool), 384 images: 12 batches
                   blend=BlendSizes(known=(0.1, 0.3, 0.5, 0.7, 0.9), num_images=384,
                                    test_images=400, image_size=64, epochs=12, blend_start=3,
                                    prototype_every=3, num_prototypes=4, feature_dim=64,
                                    hidden=16),
                   # HRN at 64 px: an 8 x 8 map per level, fine enough to find a marking
                   cam=CamSizes(image_size=64, images=48, known=0.5)),
    # the data chapter's probes at the papers' image size: 8,100 images of 448 px
    # per split, 30 epochs (rendering at 448 px, not the GPU, bounds their time)
    "gpu": Profile("gpu", epochs=30, samples_per_class=300, image_size=448, batch_size=8,
                   num_workers=8, time_budget_s=float("inf"),
                   run=RunSizes(epochs=30, samples_per_class=400, image_size=32, batch_size=128),
                   seeds=(0, 1, 2, 3, 4), cache_mib=512,
                   # the paper's input sizes on a 448-px canvas
                   zoom=ZoomSizes(canvas=448, input_sizes=(448, 224, 224),
                                  samples_per_class=100, scale_epochs=10, cls_epochs=10,
                                  apn_epochs=5, rounds=3, apn_hidden=1024),
                   # every known share of the paper's figure, the paper's schedule and
                   # widths, on larger MultiShapes canvases
                   blend=BlendSizes(known=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                                    num_images=8000, test_images=2000, image_size=128,
                                    epochs=20, blend_start=5, prototype_every=5,
                                    num_prototypes=10, feature_dim=1024, hidden=512),
                   cam=CamSizes(image_size=128, images=500, known=0.5)),
}


def get(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        ValueError: ``name`` is not ``quick``, ``cpu`` or ``gpu``.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile '{name}'; choose one of {sorted(PROFILES)}.")
    return PROFILES[name]


def current() -> Profile:
    """The profile the environment asks for: ``HMG_QUICK=1`` → quick, else
    ``HMG_PROFILE`` (quick/cpu/gpu), else cpu.

    Raises:
        ValueError: ``HMG_PROFILE`` or ``HMG_QUICK`` holds something else.
    """
    quick = os.environ.get("HMG_QUICK", "").strip()
    if quick not in ("", "0", "1"):
        raise ValueError(f"HMG_QUICK={quick!r}: set it to 1 (quick profile) or 0/unset.")
    if quick == "1":
        return PROFILES["quick"]
    name = os.environ.get("HMG_PROFILE", "cpu").strip() or "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"HMG_PROFILE={name!r} is not a profile; set it to one of {sorted(PROFILES)}."
        )
    return PROFILES[name]
