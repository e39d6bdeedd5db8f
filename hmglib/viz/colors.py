"""The colours of the book's figures, in one place so that every figure agrees.

A level, a method or a run gets the same colour wherever it is drawn: colour
``k`` of :data:`LEVEL_COLORS` (through :func:`level_color`) is the ``k``-th level
of a tree in a tree drawing, and the ``k``-th method or run in a curve or a bar.
"""

from __future__ import annotations

__all__ = [
    "BLEND_COLOR",
    "LEVEL_COLORS",
    "RELATION_COLORS",
    "BOX_COLORS",
    "PARTIAL_COLORS",
    "CAM_CMAP",
    "level_color",
]

#: One colour per level, method or run (cycled past six).
LEVEL_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]

#: The relations of a node to a label (:meth:`.LabelTree.relations`), in
#: :func:`~hmglib.viz.probabilities.draw_label_gradient`.
RELATION_COLORS = {"label": "#c44e52", "ancestor": "#dd8452", "descendant": "#4c72b0",
                   "sibling": "#8172b3", "elsewhere": "0.6"}

#: Boxes drawn on images (cycled): object, part, then more objects. Bright, so
#: that they read on the dark outline drawn under them.
BOX_COLORS = ["#ffffff", "#00e5ff", "#ffd60a", "#ff2d55", "#30d158", "#bf5af2"]

#: Partial labels: known negative (-1), unknown (0), known positive (1).
PARTIAL_COLORS = ["#c44e52", "#e6e6e6", "#55a868"]

#: A soft target made by a blend (SARB's ``1 - alpha``, ``1 - beta``), beside
#: :data:`PARTIAL_COLORS`.
BLEND_COLOR = "#4c72b0"

#: The matplotlib colormap of class activation maps laid over an image (blue:
#: nothing, red: the map's maximum), as Grad-CAM's figures draw them.
CAM_CMAP = "jet"


def level_color(k: int) -> str:
    """Colour ``k`` of :data:`LEVEL_COLORS`, cycled: ``k`` any int ``>= 0`` (a level,
    or the position of a method or run)."""
    return LEVEL_COLORS[int(k) % len(LEVEL_COLORS)]
