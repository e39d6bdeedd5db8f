"""The synthetic worlds: HierShapes (hierarchical) and MultiShapes (multi-label).

Both render deterministically from ``(seed, split, index)`` with vectorised
NumPy (see :mod:`hmglib.data.synthetic.render`), fast enough never to be the
bottleneck of CPU training, and both carry ground-truth boxes.
"""

from hmglib.data.synthetic.hier_shapes import HierBoxes, HierShapes, hier_shapes_tree
from hmglib.data.synthetic.multi_shapes import (
    MultiShapes,
    ObjectBoxes,
    class_cues,
    empirical_cooccurrence,
)

__all__ = [
    "HierShapes",
    "HierBoxes",
    "hier_shapes_tree",
    "MultiShapes",
    "ObjectBoxes",
    "class_cues",
    "empirical_cooccurrence",
]
