"""Figures of the book: pure functions that take data and return a Figure.

Nothing here trains, loads or caches; widgets (:mod:`hmglib.widgets`) call the
same functions, so the static figure before a widget and the widget agree.
Every figure function is importable from here (``hmglib.viz.draw_tree``); each
lives in the module of the idea it draws:

* :mod:`hmglib.viz.trees`: label trees (the tree, a summary of a large one, its
  legal states, its level sizes, one node in its tree);
* :mod:`hmglib.viz.probabilities`: probabilities on a tree (node marginals and
  legal-state probabilities, the push of a label on every energy, bounded
  energies, the cost of the marginals as the tree grows);
* :mod:`hmglib.viz.data`: the data (images and their boxes, two views of the same
  images, labels per level, partial labels, co-occurrence);
* :mod:`hmglib.viz.crops`: RA-CNN's attention crops (the paper's soft boxcar
  mask and its derivative, the region each scale attends and the input it sees,
  one box cropped both ways);
* :mod:`hmglib.viz.blending`: SARB's representations and blends (each class's
  attention over the image, a batch's partial labels beside its ILRB and PLRB
  soft targets, category features and their prototypes in two dimensions, the
  per-step training loss and its fluctuation);
* :mod:`hmglib.viz.cams`: class activation maps (Grad-CAM) laid over their
  images (one map per level, scale or class; RA-CNN's maps on the input each
  scale saw and on the image; methods × levels for one image; a map by hand
  beside the package's) and their localisation scores as bars over seeds,
  against maps that ignore the image;
* :mod:`hmglib.viz.architecture`: network architectures (HRN's blocks, fusion
  and heads, with the shape of every tensor for a given backbone);
* :mod:`hmglib.viz.curves`: results of training runs (curves against the relabel
  ratio and per epoch, grouped bars of a results table, bars over seeds, accuracy
  against chance);
* :mod:`hmglib.viz.protocols`: label protocols (which training images keep their
  fine label under HRN's relabelling);
* :mod:`hmglib.viz.colors`: the colours every figure shares;
* :mod:`hmglib.viz.page`: the page a figure is read on (its column's width, the
  smallest readable font, and which texts of a figure fall below it).

**Argument order.** The data comes first, then the tree, then the options:
``draw_marginals(marginals, tree, ...)``, ``draw_label_gradient(grad, tree,
node, ...)``. A figure whose only data is the tree takes the tree first
(``draw_tree(tree, ...)``, ``draw_node_view(tree, node)``). Node positions and
the relations of nodes are questions about the tree, answered by
:meth:`.LabelTree.layout` and :meth:`.LabelTree.relations`.
"""

from __future__ import annotations

from hmglib.viz.architecture import draw_hrn_architecture
from hmglib.viz.blending import (
    draw_blend_targets,
    draw_class_attention,
    draw_feature_projection,
    draw_step_losses,
)
from hmglib.viz.cams import (
    draw_cam_grid,
    draw_cams,
    draw_hand_vs_package,
    draw_localisation,
    draw_scale_cams,
    overlay,
)
from hmglib.viz.colors import (
    BLEND_COLOR,
    BOX_COLORS,
    CAM_CMAP,
    LEVEL_COLORS,
    PARTIAL_COLORS,
    RELATION_COLORS,
    level_color,
)
from hmglib.viz.crops import draw_attention_regions, draw_boxcar_mask, draw_crop_views
from hmglib.viz.curves import (
    draw_accuracy_vs_chance,
    draw_grouped_bars,
    draw_relabel_curves,
    draw_seed_bars,
    draw_training_curves,
)
from hmglib.viz.data import (
    draw_boxes,
    draw_cooccurrence,
    draw_degraded_pairs,
    draw_label_counts,
    draw_partial_labels,
    draw_samples,
)
from hmglib.viz.page import (
    CHAR_IN,
    FONT_PT,
    MIN_FONT_PT,
    PAGE_WIDTH_IN,
    shown_scale,
    unreadable_text,
)
from hmglib.viz.probabilities import (
    draw_energy_scenarios,
    draw_label_gradient,
    draw_marginals,
    draw_scaling,
    draw_sigmoid_ceiling,
)
from hmglib.viz.protocols import draw_relabel_protocol, kept_per_class
from hmglib.viz.trees import (
    draw_legal_states,
    draw_level_sizes,
    draw_node_view,
    draw_tree,
    draw_tree_icicle,
    draw_tree_summary,
)

__all__ = [
    # trees
    "draw_tree",
    "draw_tree_icicle",
    "draw_tree_summary",
    "draw_legal_states",
    "draw_level_sizes",
    "draw_node_view",
    # probabilities
    "draw_marginals",
    "draw_energy_scenarios",
    "draw_label_gradient",
    "draw_scaling",
    "draw_sigmoid_ceiling",
    # data
    "draw_boxes",
    "draw_samples",
    "draw_degraded_pairs",
    "draw_label_counts",
    "draw_partial_labels",
    "draw_cooccurrence",
    # crops
    "draw_boxcar_mask",
    "draw_attention_regions",
    "draw_crop_views",
    # blending
    "draw_class_attention",
    "draw_blend_targets",
    "draw_feature_projection",
    "draw_step_losses",
    # cams
    "overlay",
    "draw_cams",
    "draw_scale_cams",
    "draw_cam_grid",
    "draw_localisation",
    "draw_hand_vs_package",
    # architecture
    "draw_hrn_architecture",
    # curves
    "draw_relabel_curves",
    "draw_training_curves",
    "draw_grouped_bars",
    "draw_accuracy_vs_chance",
    "draw_seed_bars",
    # protocols
    "draw_relabel_protocol",
    "kept_per_class",
    # colors
    "LEVEL_COLORS",
    "RELATION_COLORS",
    "BLEND_COLOR",
    "BOX_COLORS",
    "PARTIAL_COLORS",
    "CAM_CMAP",
    "level_color",
    # page
    "PAGE_WIDTH_IN",
    "MIN_FONT_PT",
    "FONT_PT",
    "CHAR_IN",
    "shown_scale",
    "unreadable_text",
]
