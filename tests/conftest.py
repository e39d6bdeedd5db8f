"""Shared test set-up: the quick profile, headless figures, the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # this process only: chapter kernels keep the inline backend

ROOT = Path(__file__).resolve().parents[1]

# Tests always run in the quick profile (chapters executed here inherit it).
os.environ["HMG_QUICK"] = "1"
os.environ.setdefault("HMG_RESULTS_DIR", str(ROOT / "_build" / "quick" / "results"))
