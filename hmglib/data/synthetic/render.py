"""Drawing primitives shared by the synthetic worlds.

Everything here paints into a NumPy image ``(3, S, S)`` float32 in ``[0, 1]``
with vectorised operations on small windows: a shape is evaluated only on the
pixels of its bounding box, from precomputed pixel-centre coordinates, so a
64-pixel image with a few shapes costs a few hundred microseconds.

Geometry conventions:

* Pixel ``j`` covers the continuous interval ``[j, j + 1)``; its centre is
  ``j + 0.5``. Boxes are float ``(x0, y0, x1, y1)`` in these continuous
  coordinates (``x`` to the right, ``y`` down), so a box around pixels
  ``3..5`` is ``(3.0, ·, 6.0, ·)``.
* A shape lives in its own **body coordinates** ``(u, v)``: ``u`` along the body
  axis (the "head" is at ``u = +1``), ``v`` across it, both in units of the
  shape's radius ``R`` (pixels). A pixel offset ``(dx, dy)`` from the centre
  maps to ``u = (dx cos a + dy sin a) / R`` and ``v = (dy cos a - dx sin a) / R``
  for the body angle ``a``.
* Every silhouette fits in ``|u| <= 1``, ``|v| <= 0.85`` and contains the
  marking square (centre :data:`MARK_CENTER`, half side :data:`MARK_HALF`), so
  a marking always lies on the body, at the same place.
"""

from __future__ import annotations

import colorsys
import math
from functools import lru_cache

import numpy as np

__all__ = [
    "SILHOUETTES",
    "HUES",
    "MARKINGS",
    "MARK_CENTER",
    "MARK_HALF",
    "Canvas",
    "canvas",
    "hsv",
    "background",
    "silhouette_box",
    "marking_box",
    "paint_silhouette",
    "paint_marking",
    "add_noise",
]

#: Body silhouettes, in the order the worlds use them (orders, classes).
SILHOUETTES: tuple[str, ...] = ("ellipse", "triangle", "diamond", "rectangle", "plus", "hexagon")
#: Colour families: name → hue centre in degrees.
HUES: dict[str, float] = {
    "red": 0.0, "yellow": 52.0, "green": 125.0, "cyan": 185.0, "blue": 228.0, "magenta": 300.0,
}
#: Markings (the "part"): small dark patterns of similar ink area, told apart
#: only by their layout inside the marking square.
MARKINGS: tuple[str, ...] = ("spot", "ring", "bar", "cross", "checker", "frame")

#: Where the marking sits on every body, in body coordinates ``(u, v)``.
MARK_CENTER: tuple[float, float] = (0.1, 0.0)
#: Half the side of the marking square, in units of the body radius.
MARK_HALF: float = 0.27

# Polygon outlines in body coordinates, used for exact bounding boxes.
_VERTICES: dict[str, np.ndarray] = {
    "triangle": np.array([(-0.85, -0.85), (-0.85, 0.85), (1.0, 0.0)]),
    "diamond": np.array([(-1.0, 0.0), (0.0, -0.75), (1.0, 0.0), (0.0, 0.75)]),
    "rectangle": np.array([(-0.9, -0.6), (0.9, -0.6), (0.9, 0.6), (-0.9, 0.6)]),
    "plus": np.array([(-0.95, -0.3), (0.95, -0.3), (0.95, 0.3), (-0.95, 0.3),
                      (-0.3, -0.85), (0.3, -0.85), (0.3, 0.85), (-0.3, 0.85)]),
    "hexagon": np.array([(-1.0, 0.0), (-0.5, -0.75), (0.5, -0.75), (1.0, 0.0),
                         (0.5, 0.75), (-0.5, 0.75)]),
}
_ELLIPSE_V = 0.7  # the ellipse's half width across the body
_MARK_CORNERS = np.array([(MARK_CENTER[0] + su * MARK_HALF, MARK_CENTER[1] + sv * MARK_HALF)
                          for su in (-1, 1) for sv in (-1, 1)])  # (4, 2)

Box = tuple[float, float, float, float]


class Canvas:
    """Precomputed coordinates for images of one size ``S``.

    Attributes:
        size: ``S``, the side in pixels.
        centres: ``(S,)`` float32, pixel centres ``0.5 .. S - 0.5``.
        gx, gy: ``(S, S)`` float32 in ``[-0.5, 0.5]``: normalised x and y of every
            pixel (for background gradients).
        noise: ``(2S, 2S)`` float32, a fixed white-noise texture of unit variance
            (a random ``S x S`` window of it is an image's sensor noise).
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.centres = np.arange(self.size, dtype=np.float32) + np.float32(0.5)  # (S,)
        norm = self.centres / np.float32(self.size) - np.float32(0.5)  # (S,)
        self.gx = np.broadcast_to(norm[None, :], (self.size, self.size)).copy()  # (S, S)
        self.gy = np.ascontiguousarray(self.gx.T)  # (S, S)
        rng = np.random.default_rng(20220619)  # fixed: the texture is part of the world
        self.noise = rng.standard_normal((2 * self.size, 2 * self.size), dtype=np.float32)


@lru_cache(maxsize=16)
def canvas(size: int) -> Canvas:
    """The shared :class:`Canvas` of one image size (built once per process)."""
    return Canvas(size)


def hsv(hue_deg: float, sat: float, val: float) -> np.ndarray:
    """``(3,)`` float32 RGB in ``[0, 1]`` of a colour given as hue (degrees), saturation
    and value in ``[0, 1]``."""
    return np.array(colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, sat, val), dtype=np.float32)


def background(cv: Canvas, rgb0: np.ndarray, rgb1: np.ndarray, angle: float) -> np.ndarray:
    """A linear colour gradient from ``rgb0`` to ``rgb1`` along direction ``angle``.

    Returns:
        ``(3, S, S)`` float32 in ``[0, 1]``, a new array.
    """
    ramp = (cv.gx * np.float32(math.cos(angle)) + cv.gy * np.float32(math.sin(angle)))  # (S, S)
    ramp = ramp * np.float32(1 / math.sqrt(2)) + np.float32(0.5)  # (S, S) in [0, 1]
    return rgb0[:, None, None] + (rgb1 - rgb0)[:, None, None] * ramp[None]  # (3, S, S)


def _rotate(points: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Body-coordinate points ``(K, 2)`` → pixel offsets ``(K, 2)`` from the centre."""
    c, s = math.cos(angle), math.sin(angle)
    u, v = points[:, 0], points[:, 1]
    return radius * np.stack([u * c - v * s, u * s + v * c], axis=1)  # (K, 2)


def silhouette_box(name: str, cx: float, cy: float, radius: float, angle: float) -> Box:
    """The exact axis-aligned box ``(x0, y0, x1, y1)`` of a silhouette drawn at centre
    ``(cx, cy)`` with ``radius`` (pixels) and body ``angle`` (radians)."""
    if name == "ellipse":
        c, s = math.cos(angle), math.sin(angle)
        hx = radius * math.sqrt(c * c + (_ELLIPSE_V * s) ** 2)
        hy = radius * math.sqrt(s * s + (_ELLIPSE_V * c) ** 2)
        return (cx - hx, cy - hy, cx + hx, cy + hy)
    off = _rotate(_VERTICES[name], radius, angle)  # (K, 2)
    lo, hi = off.min(axis=0), off.max(axis=0)
    return (cx + float(lo[0]), cy + float(lo[1]), cx + float(hi[0]), cy + float(hi[1]))


def marking_box(cx: float, cy: float, radius: float, angle: float) -> Box:
    """The axis-aligned box of the marking square of a body at ``(cx, cy)``."""
    off = _rotate(_MARK_CORNERS, radius, angle)  # (4, 2)
    lo, hi = off.min(axis=0), off.max(axis=0)
    return (cx + float(lo[0]), cy + float(lo[1]), cx + float(hi[0]), cy + float(hi[1]))


def _window(cv: Canvas, box: Box) -> tuple[int, int, int, int] | None:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the pixels whose centres may lie in ``box``."""
    c0 = max(0, math.floor(box[0]))
    r0 = max(0, math.floor(box[1]))
    c1 = min(cv.size, math.ceil(box[2]))
    r1 = min(cv.size, math.ceil(box[3]))
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _body_coords(
    cv: Canvas, win: tuple[int, int, int, int], cx: float, cy: float, radius: float, angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Body coordinates ``(u, v)``, each ``(h, w)`` float32, of the pixels of a window."""
    r0, r1, c0, c1 = win
    inv = 1.0 / radius
    c, s = np.float32(math.cos(angle) * inv), np.float32(math.sin(angle) * inv)
    dx = (cv.centres[c0:c1] - np.float32(cx))[None, :]  # (1, w)
    dy = (cv.centres[r0:r1] - np.float32(cy))[:, None]  # (h, 1)
    u = dx * c + dy * s  # (h, w)
    v = dy * c - dx * s  # (h, w)
    return u, v


def _silhouette_mask(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool: the pixels inside the silhouette ``name``."""
    if name == "ellipse":
        return u * u + v * v * np.float32(1 / _ELLIPSE_V**2) <= 1
    au, av = np.abs(u), np.abs(v)
    if name == "triangle":
        return (u >= -0.85) & (av <= (1 - u) * np.float32(0.85 / 1.85))
    if name == "diamond":
        return au + av * np.float32(1 / 0.75) <= 1
    if name == "rectangle":
        return (au <= 0.9) & (av <= 0.6)
    if name == "plus":
        return ((au <= 0.95) & (av <= 0.3)) | ((au <= 0.3) & (av <= 0.85))
    if name == "hexagon":
        return (av <= 0.75) & (au + av * np.float32(0.5 / 0.75) <= 1)
    raise ValueError(f"unknown silhouette '{name}'; choose one of {list(SILHOUETTES)}.")


def _marking_mask(name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool: the ink of marking ``name`` in marking coordinates ``a, b``
    (the marking square is ``|a|, |b| <= 1``)."""
    if name == "spot":
        return a * a + b * b <= 0.55
    if name == "ring":
        r2 = a * a + b * b
        return (r2 >= 0.4) & (r2 <= 1.0)
    aa, ab = np.abs(a), np.abs(b)
    square = (aa <= 1) & (ab <= 1)
    if name == "bar":
        return square & (ab <= 0.4)
    if name == "cross":
        return square & ((aa <= 0.3) | (ab <= 0.3))
    if name == "checker":
        return square & (a * b >= 0)
    if name == "frame":
        return square & (np.maximum(aa, ab) >= 0.6)
    raise ValueError(f"unknown marking '{name}'; choose one of {list(MARKINGS)}.")


def paint_silhouette(
    img: np.ndarray, cv: Canvas, name: str, cx: float, cy: float, radius: float, angle: float,
    rgb: np.ndarray,
) -> Box:
    """Paint a silhouette in flat colour ``rgb`` ``(3,)`` into ``img`` ``(3, S, S)``
    (in place). Returns its box."""
    box = silhouette_box(name, cx, cy, radius, angle)
    win = _window(cv, box)
    if win is not None:
        u, v = _body_coords(cv, win, cx, cy, radius, angle)
        mask = _silhouette_mask(name, u, v)  # (h, w)
        r0, r1, c0, c1 = win
        np.copyto(img[:, r0:r1, c0:c1], rgb[:, None, None], where=mask[None])
    return box


def paint_marking(
    img: np.ndarray, cv: Canvas, name: str, cx: float, cy: float, radius: float, angle: float,
    rgb: np.ndarray,
) -> Box:
    """Paint marking ``name`` in ink ``rgb`` on the body at ``(cx, cy)`` (in place).
    Returns the box of the marking square (the part box)."""
    box = marking_box(cx, cy, radius, angle)
    win = _window(cv, box)
    if win is not None:
        u, v = _body_coords(cv, win, cx, cy, radius, angle)
        inv = np.float32(1 / MARK_HALF)
        a = (u - np.float32(MARK_CENTER[0])) * inv  # (h, w)
        b = (v - np.float32(MARK_CENTER[1])) * inv  # (h, w)
        mask = _marking_mask(name, a, b)  # (h, w)
        r0, r1, c0, c1 = win
        np.copyto(img[:, r0:r1, c0:c1], rgb[:, None, None], where=mask[None])
    return box


def add_noise(img: np.ndarray, cv: Canvas, ox: int, oy: int, amplitude: float) -> np.ndarray:
    """Add the canvas's noise texture (window at offset ``(ox, oy)``, times
    ``amplitude``) to every channel and clip to ``[0, 1]``, in place."""
    if amplitude > 0:
        s = cv.size
        img += cv.noise[oy:oy + s, ox:ox + s][None] * np.float32(amplitude)  # (3, S, S)
    np.clip(img, 0.0, 1.0, out=img)
    return img
