"""Timing helper shared by the benchmark scripts."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """The best wall-clock time in seconds of ``repeat`` calls of ``fn``."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
