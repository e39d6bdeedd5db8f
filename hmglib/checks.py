"""Argument validators shared by the library, so that one kind of argument is
checked, and explained, the same way everywhere.

Every validator takes ``owner``, the name of the class or function the user
called (it starts the message, e.g. ``"HierShapes"``), and the argument's name;
it returns the value in its plain Python type (``int``, ``float``) and raises
an error whose message names the argument, the value given and what to pass
instead.

By kind:

* **integers** — :func:`check_int` (a count or size with a lower bound),
  :func:`check_seed` (an int ``>= 0``).
* **real numbers** — :func:`check_real` (a number in an interval, NaN refused),
  :func:`check_share` (a number in ``[0, 1]``).
* **choices** — :func:`check_choice` (one of a fixed set of values).
* **indices** — :func:`check_index` (a sample index, negative from the end).
* **image batches** — :func:`check_images` (a ``(B, C, H, W)`` float batch, as
  every model's forward takes it).
* **partial labels** — :func:`check_partial_labels` (a ``(B, C)`` matrix in
  ``{1, 0, -1}``, as the multi-label models and losses take it).

Booleans are refused wherever a number is expected (``True`` is an ``int`` to
Python, but never a count or a share to a reader). NumPy scalars and
one-element tensors are accepted as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import TypeVar

import torch

__all__ = [
    "check_int",
    "check_seed",
    "check_real",
    "check_share",
    "check_choice",
    "check_index",
    "check_images",
    "check_partial_labels",
]

T = TypeVar("T")


def _scalar(value: object) -> object:
    """A one-element tensor as its Python number; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        return value.item()
    return value


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""


# ------------------------------------------------------------------ integers
def check_int(owner: str, name: str, value: object, lowest: int = 0, hint: str = "") -> int:
    """``value`` as an ``int``, or a ValueError naming ``owner`` and ``name``.

    Args:
        owner: the class or function the user called (starts the message).
        name: the argument's name.
        value: what the user passed: an int (or NumPy integer, or one-element integer
            tensor), not a bool.
        lowest: the smallest allowed value.
        hint: optional reason appended to the message in parentheses.

    Returns:
        ``int(value)``, ``>= lowest``.

    Raises:
        ValueError: ``value`` is not an integer or is below ``lowest``.
    """
    plain = _scalar(value)
    if isinstance(plain, bool) or not isinstance(plain, Integral) or plain < lowest:
        raise ValueError(f"{owner}: {name}={value!r} must be an int >= {lowest}{_hint(hint)}.")
    return int(plain)


def check_seed(owner: str, seed: object, name: str = "seed") -> int:
    """``seed`` as an ``int >= 0`` (what NumPy and PyTorch generators accept).

    Raises:
        ValueError: ``seed`` is not an integer or is negative; the message names
            ``owner`` and ``name``.
    """
    return check_int(owner, name, seed, 0)


# -------------------------------------------------------------- real numbers
def check_real(
    owner: str,
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    closed_low: bool = True,
    closed_high: bool = True,
    hint: str = "",
) -> float:
    """``value`` as a ``float`` inside an interval, or a ValueError naming the argument.

    Args:
        owner: the class or function the user called (starts the message).
        name: the argument's name.
        value: what the user passed: a real number (int, float, NumPy scalar or
            one-element tensor), not a bool and not NaN.
        low, high: the interval's ends (infinite by default).
        closed_low, closed_high: whether ``low`` / ``high`` themselves are allowed.
        hint: optional reason appended to the message in parentheses.

    Returns:
        ``float(value)`` in the interval.

    Raises:
        ValueError: ``value`` is not a real number, is NaN, or lies outside the interval.
    """
    plain = _scalar(value)
    if isinstance(plain, Real) and not isinstance(plain, bool):
        x = float(plain)
        above = low <= x if closed_low else low < x
        below = x <= high if closed_high else x < high
        if not math.isnan(x) and above and below:
            return x
    interval = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"
    raise ValueError(f"{owner}: {name}={value!r} must be a number in {interval}{_hint(hint)}.")


def check_share(owner: str, name: str, value: object) -> float:
    """``value`` as a ``float`` in ``[0, 1]``: a share such as a ratio or a probability.

    Raises:
        ValueError: ``value`` is not a real number in ``[0, 1]`` (NaN included); the
            message names ``owner`` and ``name``.
    """
    return check_real(owner, name, value, 0.0, 1.0, hint="a share, e.g. 0.3 for 30 %")


# ------------------------------------------------------------------- choices
def check_choice(owner: str, name: str, value: T, choices: Iterable[object],
                 hint: str = "") -> T:
    """``value`` itself if it is one of ``choices``, else a ValueError listing them.

    Args:
        owner: the class or function the user called (starts the message).
        name: the argument's name.
        value: what the user passed.
        choices: the allowed values (compared with ``==``), e.g. a tuple of names
            or the keys of a dict.
        hint: optional explanation of the choices, appended in parentheses.

    Raises:
        ValueError: ``value`` is not among ``choices``.
    """
    allowed = list(choices)
    try:
        found = any(bool(value == c) for c in allowed)
    except (TypeError, RuntimeError, ValueError):  # e.g. a tensor of several elements
        found = False
    if not found:
        raise ValueError(
            f"{owner}: unknown {name}={value!r}; choose one of {allowed}{_hint(hint)}.")
    return value


# ------------------------------------------------------------------- indices
def check_index(owner: str, index: object, n: int) -> int:
    """``index`` as an int in ``[0, n)``; negative indices count from the end.

    Args:
        owner: the dataset (or other sequence) being indexed (starts the message).
        index: an int, NumPy integer or one-element integer tensor, in ``-n..n - 1``.
        n: the number of samples, ``>= 0``.

    Returns:
        ``index % n``, in ``0..n - 1``.

    Raises:
        TypeError: ``index`` is not an integer (a bool, a float, a string, a slice).
        IndexError: ``index`` is outside ``-n..n - 1``; the message gives the range.
    """
    plain = _scalar(index)
    if isinstance(plain, bool) or not isinstance(plain, Integral):
        raise TypeError(f"{owner}: index must be an int, got {index!r} "
                        f"({type(index).__name__}).")
    if n <= 0:
        raise IndexError(f"{owner}: index {plain} is outside the 0 samples: it is empty.")
    if not -n <= plain < n:
        raise IndexError(f"{owner}: index {plain} is outside the {n} samples (use 0..{n - 1}, "
                         f"or -{n}..-1 to count from the end).")
    return int(plain) % n


def check_images(owner: str, images: object, channels: int | None = 3,
                 name: str = "images") -> None:
    """Raise a clear error unless ``images`` is a ``(B, channels, H, W)`` float batch.

    Args:
        owner: the model whose forward was called, named in the message.
        images: what was passed to its forward.
        channels: the channels the backbone takes (``None``: any).
        name: the argument's name in the message.

    Raises:
        TypeError: not a tensor, or not floating point (e.g. ``uint8`` images).
        ValueError: not 4-D (e.g. one image without its batch dimension), or the
            wrong number of channels in dimension 1.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{owner} takes {name} as a tensor (B, 3, H, W) float, got "
                        f"{type(images).__name__}; stack the images with torch.stack.")
    shape = tuple(images.shape)
    want = f"(B, {channels if channels is not None else 'C'}, H, W)"
    if images.dim() == 3:
        raise ValueError(f"{owner} takes a batch of images {want}; {name} has shape {shape}, "
                         "one image without a batch dimension: add one with "
                         f"{name}.unsqueeze(0).")
    if images.dim() != 4:
        hint = (f"flatten the leading dimensions with {name}.flatten(0, 1)"
                if images.dim() == 5 else f"reshape {name} to {want}")
        raise ValueError(f"{owner} takes a batch of images {want}; {name} is {images.dim()}-D "
                         f"with shape {shape}: {hint}.")
    if channels is not None and shape[1] != channels:
        hint = (f"; channels-last images (B, H, W, {channels}) become (B, {channels}, H, W) "
                f"with {name}.permute(0, 3, 1, 2)" if shape[-1] == channels else "")
        if shape[1] == 1 and channels == 3:
            hint += f"; grey images become 3-channel with {name}.expand(-1, 3, -1, -1)"
        raise ValueError(f"{owner} takes {want}: dimension 1 holds the {channels} channels "
                         f"its backbone takes; {name} has shape {shape}{hint}.")
    if not images.is_floating_point():
        raise TypeError(f"{owner} takes float images (normalised as the backbone's weights "
                        f"expect), got {name} of dtype {images.dtype} and shape {shape}; "
                        f"convert with {name}.float() / 255 and normalise (e.g. with the "
                        "weights' transforms()).")


def check_partial_labels(labels: object, what: str, shape: tuple[int, int] | None = None,
                         ) -> torch.Tensor:
    """``labels`` as a tensor, checked to be ``(B, C)`` partial labels in ``{1, 0, -1}``.

    Raises:
        ValueError: not 2-D, another shape than ``shape``, or other values.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 2:
        raise ValueError(f"{what} must be (B, C) partial labels, got shape "
                         f"{tuple(labels.shape)}.")
    if shape is not None and tuple(labels.shape) != tuple(shape):
        raise ValueError(f"{what} has shape {tuple(labels.shape)}, expected {tuple(shape)}.")
    bad = ~((labels == 1) | (labels == 0) | (labels == -1))
    if bad.any():
        raise ValueError(f"{what} must hold only 1, 0 and -1 (known positive, unknown, known "
                         f"negative); found {labels[bad][:5].tolist()}. Turn complete "
                         "{0, 1} labels into partial ones with hmglib.data.drop_labels.")
    return labels
