"""The rectangles a figure's axes outline, read back for the figure tests."""

from __future__ import annotations

from matplotlib.patches import Rectangle


def rects(ax) -> dict[str, list[tuple[float, float, float, float]]]:
    """The rectangles drawn in ``ax`` as pixel ``xyxy``, by label."""
    found: dict[str, list[tuple[float, float, float, float]]] = {}
    for p in ax.patches:
        if isinstance(p, Rectangle):
            x, y = p.get_xy()
            found.setdefault(p.get_label(), []).append(
                (x, y, x + p.get_width(), y + p.get_height()))
    return found
