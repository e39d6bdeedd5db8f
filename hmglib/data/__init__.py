"""Datasets and label protocols.

* The synthetic worlds, rendered on the fly from ``(seed, split, index)``:
  :class:`~hmglib.data.synthetic.hier_shapes.HierShapes` (a 3-level tree with object and
  part boxes) and :class:`~hmglib.data.synthetic.multi_shapes.MultiShapes` (multi-label
  canvases with a known co-occurrence);
  :func:`~hmglib.data.synthetic.worlds.profile_worlds` builds the data chapter's
  worlds for a run profile, streamed through a memory-bounded
  :class:`~hmglib.data.cache.CachedDataset`.
* The label protocols of the papers (:mod:`hmglib.data.protocols`):
  :func:`~hmglib.data.protocols.coarsen_labels`,
  :func:`~hmglib.data.protocols.degrade_resolution`,
  :class:`~hmglib.data.protocols.CoarsenedDataset`,
  :func:`~hmglib.data.protocols.drop_labels`,
  :class:`~hmglib.data.protocols.PartialLabelDataset`.
* The real datasets, read from a downloaded copy (see each class), and the
  errors they raise (:mod:`hmglib.data.errors`, all exported here too).
* The class-name embeddings of SARB (:mod:`hmglib.data.embeddings`):
  :func:`~hmglib.data.embeddings.glove_class_embeddings` (300-d GloVe, read from a
  copy downloaded by hand, :data:`~hmglib.data.embeddings.GLOVE`, and cached) and
  :func:`~hmglib.data.embeddings.onehot_word_embeddings` (offline, for the
  synthetic worlds).

Targets follow the book's conventions: hierarchical targets are node indices
of a :class:`~hmglib.hierarchy.LabelTree`; multi-label targets are ``(C,)`` vectors,
``{0, 1}`` when complete and ``{1, 0, -1}`` when partial.
"""

# the real datasets are read from a downloaded copy (see each class)
from hmglib.data._io import SOURCES as _SOURCES
from hmglib.data._io import data_root
from hmglib.data.aircraft import FGVCAircraft3
from hmglib.data.cache import CachedDataset
from hmglib.data.cars import StanfordCars
from hmglib.data.coco import COCO2014
from hmglib.data.cub import CUB200
from hmglib.data.embeddings import GLOVE, glove_class_embeddings, onehot_word_embeddings
from hmglib.data.errors import (
    CorruptImageError,
    DatasetFormatError,
    DatasetMismatchError,
    DatasetNotFoundError,
    DownloadUnavailableError,
    MissingExtraError,
)
from hmglib.data.protocols import (
    CoarsenedDataset,
    PartialLabelDataset,
    coarsen_labels,
    degrade_resolution,
    drop_labels,
)
from hmglib.data.synthetic import (
    HierBoxes,
    HierShapes,
    MultiShapes,
    ObjectBoxes,
    ZoomOnObject,
    empirical_cooccurrence,
    hier_shapes_tree,
    profile_worlds,
)
from hmglib.data.voc import VOC2007

#: Download addresses, checksums and manual instructions, one entry per dataset
#: (:class:`hmglib.data._io.Source`; the one place that holds them).
SOURCES = _SOURCES

__all__ = [
    "HierShapes",
    "HierBoxes",
    "hier_shapes_tree",
    "MultiShapes",
    "ObjectBoxes",
    "empirical_cooccurrence",
    "profile_worlds",
    "ZoomOnObject",
    "CachedDataset",
    "coarsen_labels",
    "degrade_resolution",
    "CoarsenedDataset",
    "drop_labels",
    "PartialLabelDataset",
    "CUB200",
    "FGVCAircraft3",
    "StanfordCars",
    "VOC2007",
    "COCO2014",
    "GLOVE",
    "glove_class_embeddings",
    "onehot_word_embeddings",
    "SOURCES",
    "data_root",
    "DatasetNotFoundError",
    "CorruptImageError",
    "DatasetFormatError",
    "DatasetMismatchError",
    "DownloadUnavailableError",
    "MissingExtraError",
]
