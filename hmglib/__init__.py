"""hmglib: hierarchical multi-granularity classification in PyTorch.

The library behind the hmg-book: label trees and their probabilities (HRN),
attention cropping and zooming (RA-CNN), representation blending for partial
labels (SARB), and Grad-CAM figures that show and measure where models look.
"""

from hmglib import hierarchies, losses, metrics, probability, profile, results
from hmglib.hierarchy import LabelTree, LabelTreeError

__version__ = "0.1.0"

__all__ = [
    "LabelTree",
    "LabelTreeError",
    "hierarchies",
    "losses",
    "metrics",
    "probability",
    "profile",
    "results",
    "__version__",
]
