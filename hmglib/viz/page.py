"""The page a figure is read on: how wide the book's column is, and whether a
figure's text stays readable when it is shown there.

A chapter's figure is saved at its own size and shown at most as wide as the
page's text column; a wider figure is scaled down, and its text with it. The
book's figures therefore keep every label at least :data:`MIN_FONT_PT` points
*as shown*: a figure up to :data:`PAGE_WIDTH_IN` inches wide with fonts of at
least that size, or a wider one with proportionally larger fonts.
:func:`unreadable_text` lists what falls short; the tests run it on every
figure the :mod:`hmglib.viz` functions draw.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.text import Text

__all__ = ["PAGE_WIDTH_IN", "MIN_FONT_PT", "FONT_PT", "CHAR_IN", "shown_scale", "unreadable_text"]

#: The width of the book's text column, in inches of a figure saved at 100 dpi
#: (the theme's column is about 730 CSS pixels wide).
PAGE_WIDTH_IN = 7.3
#: The smallest font size, in points as shown on the page, that a figure's text
#: may have.
MIN_FONT_PT = 7.0
#: The font size, in points, that the book's figures draw their text at when they
#: fit the column (above :data:`MIN_FONT_PT`, so a figure may shrink a little).
FONT_PT = 9.0
#: The width, in inches, of an average character at :data:`FONT_PT` (about 0.6
#: of the size): what figures use to make room for, or wrap, their labels.
CHAR_IN = 0.6 * FONT_PT / 72


def shown_scale(fig: Figure, width_in: float = PAGE_WIDTH_IN) -> float:
    """The factor in ``(0, 1]`` by which the page scales ``fig``: 1 when the
    figure fits the column, else the column's width over the figure's."""
    return min(1.0, width_in / float(fig.get_figwidth()))


def unreadable_text(fig: Figure, width_in: float = PAGE_WIDTH_IN,
                    min_pt: float = MIN_FONT_PT) -> list[str]:
    """The visible texts of ``fig`` smaller than ``min_pt`` points as shown in a
    column ``width_in`` inches wide, one line each (empty when all are readable).

    Raises:
        TypeError: ``fig`` is not a matplotlib Figure.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"unreadable_text: fig must be a matplotlib Figure, not "
                        f"{type(fig).__name__}; pass the figure a viz function returned.")
    scale = shown_scale(fig, width_in)
    found = []
    for text in fig.findobj(Text):
        content = text.get_text().strip()
        if not content or not text.get_visible():
            continue
        shown = text.get_fontsize() * scale
        if shown < min_pt - 1e-6:
            found.append(f"{content[:30]!r}: {text.get_fontsize():.1f} pt drawn, "
                         f"{shown:.1f} pt shown")
    return found
