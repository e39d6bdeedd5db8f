"""hmglib: hierarchical multi-granularity classification in PyTorch.

The library behind the hmg-book: label trees and their probabilities (HRN),
attention cropping and zooming (RA-CNN), representation blending for partial
labels (SARB), and Grad-CAM figures that show and measure where models look.

``import hmglib`` loads only the label tree (:class:`~hmglib.hierarchy.LabelTree`); every
submodule of :data:`SUBMODULES` is an attribute that is imported the first
time it is used, so ``hmglib.data.HierShapes`` or ``hmglib.viz`` work after a
bare ``import hmglib`` while plotting and widget libraries load only for the
modules that need them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from hmglib.hierarchy import LabelTree, LabelTreeError

if TYPE_CHECKING:  # what static tools see; at run time they load on first use
    from hmglib import (  # noqa: F401
        alternation,
        atomic,
        blending,
        checks,
        cli,
        colab,
        data,
        engine,
        errors,
        experiments,
        hierarchies,
        hierarchy,
        losses,
        metrics,
        models,
        precision,
        pretraining,
        probability,
        profile,
        recipes,
        results,
        viz,
        widgets,
    )

#: The library's version.
__version__ = "0.1.0"

#: The public submodules and subpackages, each an attribute of ``hmglib``
#: imported on first access.
SUBMODULES: tuple[str, ...] = (
    "alternation",
    "atomic",
    "blending",
    "cam",
    "checks",
    "cli",
    "colab",
    "data",
    "engine",
    "errors",
    "experiments",
    "hierarchies",
    "hierarchy",
    "losses",
    "metrics",
    "models",
    "precision",
    "pretraining",
    "probability",
    "profile",
    "recipes",
    "results",
    "viz",
    "widgets",
)

__all__ = ["LabelTree", "LabelTreeError", "SUBMODULES", "__version__"]


def __getattr__(name: str) -> ModuleType:
    """``hmglib.<submodule>``, imported the first time it is asked for.

    Raises:
        AttributeError: ``name`` is neither a submodule nor a name of the package;
            the message lists the submodules.
    """
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # also sets the attribute
    raise AttributeError(
        f"module 'hmglib' has no attribute {name!r}; its submodules are "
        f"{', '.join(SUBMODULES)}, and it exports {', '.join(__all__)}."
    )


def __dir__() -> list[str]:
    """The package's public names and submodules (imported or not), and its dunders."""
    return sorted({*__all__, *SUBMODULES, *(n for n in globals() if n.startswith("__"))})
