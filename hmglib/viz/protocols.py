"""Label protocols drawn: which training images keep their fine label.

HRN's relabelling protocol (:func:`hmglib.data.protocols.coarsen_labels` with
``rule="ordered"``) keeps the species label on the first ``ceil(n (1 - r))``
images of each species, in the order of the dataset's list file, and gives the
other images the family's label; optionally those images are also degraded to
a quarter of their resolution (:func:`hmglib.data.protocols.degrade_resolution`).
:func:`draw_relabel_protocol` draws that rule as one row of squares per species.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from hmglib.viz.colors import level_color
from hmglib.viz.page import PAGE_WIDTH_IN

__all__ = ["draw_relabel_protocol", "kept_per_class"]

#: Species and families of the default schematic (names only).
_DEFAULT_SPECIES = {"species a": "family 1", "species b": "family 1", "species c": "family 2"}


def kept_per_class(samples: int, ratio: float) -> int:
    """How many of a class's ``samples`` training images keep their fine label at
    relabel ratio ``ratio``: ``ceil(samples * (1 - ratio))``, the product rounded
    to 9 decimals first (as :func:`hmglib.data.protocols.coarsen_labels` does, so
    that ``10 * (1 - 0.7)`` keeps 3, not 4).

    Args:
        samples: ``n_c >= 1``, the class's training images.
        ratio: ``r`` in ``[0, 1]``.

    Returns:
        An int in ``[0, samples]``.

    Raises:
        ValueError: ``samples < 1`` or ``ratio`` outside ``[0, 1]``.
    """
    if int(samples) != samples or samples < 1:
        raise ValueError(f"kept_per_class: samples={samples} must be a whole number >= 1 "
                         "(the training images of one class).")
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"kept_per_class: ratio={ratio} must be in [0, 1] (a share, e.g. "
                         "0.7 for 70 %).")
    return math.ceil(round(int(samples) * (1.0 - float(ratio)), 9))


def draw_relabel_protocol(
    ratio: float | Sequence[float],
    samples_per_class: int | Sequence[int] = 10,
    species: Mapping[str, str] | None = None,
    degrade: bool = False,
    title: str | None = None,
) -> Figure:
    """The relabelling protocol as a schematic: one row of squares per species,
    one square per training image in list-file order, one panel per ratio.

    The first :func:`kept_per_class` squares of a row keep the species label
    (the species colour); the others are relabelled to the family (the family
    colour, hatched when ``degrade`` marks them as downsampled too). Each row
    ends with the count kept, e.g. ``3/10``.

    Args:
        ratio: ``r`` in ``[0, 1]``, or several (one panel each, e.g.
            ``[0.3, 0.7, 0.9]``).
        samples_per_class: ``n_c``, one int for every species or one per species
            (unequal counts show the rounding up of ``ceil``).
        species: ``{species name: family name}``, the rows from top to bottom
            (default: three made-up species of two families).
        degrade: draw the relabelled images as degraded too (HRN's image-quality
            protocol).
        title: optional figure title.

    Returns:
        A Figure at most as wide as the page's column
        (:data:`~hmglib.viz.page.PAGE_WIDTH_IN`), every text at 9 pt or more.

    Raises:
        ValueError: no ratio, a ratio outside ``[0, 1]``, an empty ``species``, or
            ``samples_per_class`` whose length is not one per species or with a
            count below 1.
    """
    fn = "draw_relabel_protocol"
    ratios = [float(ratio)] if isinstance(ratio, (int, float)) else [float(r) for r in ratio]
    if not ratios:
        raise ValueError(f"{fn}: give at least one ratio, e.g. draw_relabel_protocol(0.7).")
    for r in ratios:
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"{fn}: ratio {r} must be in [0, 1] (a share, e.g. 0.7 for 70 %).")
    rows = dict(_DEFAULT_SPECIES if species is None else species)
    if not rows:
        raise ValueError(f"{fn}: species is empty; give {{species name: family name}}.")
    if isinstance(samples_per_class, int):
        counts = [samples_per_class] * len(rows)
    else:
        counts = [int(n) for n in samples_per_class]
        if len(counts) != len(rows):
            raise ValueError(f"{fn}: samples_per_class has {len(counts)} counts for "
                             f"{len(rows)} species; give one int, or one per species.")
    if min(counts) < 1:
        raise ValueError(f"{fn}: samples_per_class must be >= 1 for every species, "
                         f"got {counts}.")
    fine, coarse = level_color(2), level_color(1)
    widest = max(counts)
    labels = [f"{name}\n({family})" for name, family in rows.items()]
    label_in = 0.08 * max(len(line) for text in labels for line in text.split("\n"))
    width = min(PAGE_WIDTH_IN, label_in + 0.6 + len(ratios) * (0.5 + 0.2 * widest))
    height = 1.2 + 0.45 * len(rows)
    fig, axes = plt.subplots(1, len(ratios), figsize=(width, height), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, r in zip(axes[0], ratios, strict=True):
        for row, n in enumerate(counts):
            keep = kept_per_class(n, r)
            y = len(counts) - 1 - row
            for i in range(n):
                relabelled = i >= keep
                ax.add_patch(Rectangle((i + 0.08, y + 0.12), 0.84, 0.76,
                                       facecolor=coarse if relabelled else fine,
                                       edgecolor="white" if relabelled and degrade else "none",
                                       hatch="////" if relabelled and degrade else None,
                                       lw=0))
            ax.text(widest + 0.3, y + 0.5, f"{keep}/{n}", va="center", ha="left", fontsize=9)
        ax.set_xlim(0, widest + 1.9)
        ax.set_ylim(0, len(counts))
        if ax is axes[0, 0]:  # the panels share the rows: label them once
            ax.set_yticks([len(counts) - 1 - k + 0.5 for k in range(len(counts))],
                          labels=labels, fontsize=9)
        ax.set_xticks([])
        ax.set_title(f"r = {100 * r:.0f} %", fontsize=10)
        ax.set_xlabel("images in list order", fontsize=9)
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
        ax.tick_params(left=False)
    handles = [Patch(facecolor=fine, label="keeps the species label"),
               Patch(facecolor=coarse, edgecolor="white" if degrade else coarse,
                     hatch="////" if degrade else None,
                     label="family label" + (", degraded ×0.25" if degrade else ""))]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
