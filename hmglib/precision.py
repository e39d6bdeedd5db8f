"""Precision of the tree computations: float32 or float64, whatever autocast does.

The recursions of :mod:`hmglib.probability` and the losses built on them sum
``exp`` of energies over many legal states. In half precision (float16,
bfloat16: what a model under :func:`torch.autocast` returns) those sums lose
about 0.04 nats per sample under bfloat16, so every tree computation of the
library upcasts its input with :func:`upcast` and runs inside
:func:`autocast_off`. Results come back in :func:`compute_dtype` of the input;
gradients flow back to the input's own dtype.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["compute_dtype", "upcast", "autocast_off"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the tree computations run in for inputs of ``dtype``:
    float64 for float64, float32 for every other floating dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in :func:`compute_dtype` of its dtype (a no-op for float32 and float64;
    differentiable)."""
    return x.to(compute_dtype(x.dtype))


def autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """A context with autocast disabled on ``device``'s type (a no-op context on
    device types autocast does not know)."""
    available = getattr(torch.amp, "is_autocast_available", None)
    if available is not None and not available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)
