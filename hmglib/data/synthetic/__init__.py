"""The synthetic worlds: HierShapes (hierarchical) and MultiShapes (multi-label).

Both render deterministically from ``(seed, split, index)`` with vectorised
NumPy (see :mod:`hmglib.data.synthetic.render`), fast enough never to be the
bottleneck of CPU training, and both carry ground-truth boxes.
:func:`~hmglib.data.synthetic.worlds.profile_worlds` builds the data chapter's
worlds for a run profile, streamed (see :mod:`hmglib.data.synthetic.worlds`).
"""

from hmglib.data.synthetic.hier_shapes import HierBoxes, HierShapes, hier_shapes_tree
from hmglib.data.synthetic.multi_shapes import (
    MultiShapes,
    ObjectBoxes,
    class_cues,
    empirical_cooccurrence,
)
from hmglib.data.synthetic.worlds import (
    SMALL_OBJECT_SCALE,
    DataWorlds,
    ZoomOnObject,
    profile_worlds,
)

__all__ = [
    "HierShapes",
    "HierBoxes",
    "hier_shapes_tree",
    "MultiShapes",
    "ObjectBoxes",
    "class_cues",
    "empirical_cooccurrence",
    "ZoomOnObject",
    "DataWorlds",
    "profile_worlds",
    "SMALL_OBJECT_SCALE",
]
