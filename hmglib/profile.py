"""Run profiles: how big every experiment of the book is.

Three profiles, chosen by the environment, never by ad-hoc flags in a chapter:

* ``quick`` (``HMG_QUICK=1``): the tests; each chapter runs in seconds.
* ``cpu`` (the default): the book build; real results in minutes on 2 cores.
* ``gpu`` (``HMG_PROFILE=gpu``): paper scale on a CUDA device.

``HMG_PROFILE`` names a profile explicitly; ``HMG_QUICK=1`` wins over it, so the
test suite is quick whatever else is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Profile", "PROFILES", "get", "current"]


@dataclass(frozen=True)
class Profile:
    """The sizes one run profile gives every experiment.

    Attributes:
        name: ``"quick"``, ``"cpu"`` or ``"gpu"``.
        epochs: training epochs of a chapter's main experiments.
        samples_per_class: synthetic training images per leaf class.
        image_size: side of the synthetic images in pixels.
        batch_size: training batch size.
        num_workers: DataLoader workers.
        time_budget_s: the wall-clock budget of one chapter in this profile.
    """

    name: str
    epochs: int
    samples_per_class: int
    image_size: int
    batch_size: int
    num_workers: int
    time_budget_s: float


#: The run profiles by name: ``quick``, ``cpu`` and ``gpu``.
PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", epochs=1, samples_per_class=8, image_size=32, batch_size=32,
                     num_workers=0, time_budget_s=45.0),
    "cpu": Profile("cpu", epochs=8, samples_per_class=150, image_size=64, batch_size=64,
                   num_workers=0, time_budget_s=240.0),
    "gpu": Profile("gpu", epochs=200, samples_per_class=1000, image_size=448, batch_size=8,
                   num_workers=8, time_budget_s=float("inf")),
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
