"""A memory-bounded cache for datasets that render their items on demand.

The synthetic worlds draw every image when it is asked for, so nothing is kept
in memory. A training run asks for every image once per epoch; on a CPU,
drawing them again every epoch costs time that a cache saves, while a whole
split at paper scale (8,100 images of 448 px in the gpu profile, about 20 GB
as float32) cannot be held in a laptop's memory. :class:`CachedDataset` keeps what fits
in a fixed budget of bytes and streams the rest.

Its policy is *keep the first items that fit*: an item is stored when it is
first read, as long as the budget allows, and is never evicted. Under the
shuffled order of training, every item is read once per epoch, so a cache that
holds a share ``q`` of the split serves a share ``q`` of every later epoch. A
least-recently-used cache would serve less: each item comes back about one
epoch later, after as many other items as the split holds, so with a budget
below the split it has usually been evicted by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import Dataset, get_worker_info

from hmglib.checks import check_index, check_int

__all__ = ["CachedDataset", "item_nbytes"]


def item_nbytes(item: Any) -> int:
    """The bytes of the tensors in a dataset item (``(image, target)`` pairs, and
    any nesting of tuples, lists and dicts of tensors); other values count 0.

    A tensor counts its whole storage: a crop that is a view of a larger image
    keeps that image in memory, and counts it.

    Args:
        item: what a dataset's ``__getitem__`` returns.

    Returns:
        The sum of the tensors' storage sizes in bytes (an int >= 0).
    """
    if isinstance(item, torch.Tensor):
        return item.untyped_storage().nbytes()
    if isinstance(item, Mapping):
        return sum(item_nbytes(v) for v in item.values())
    if isinstance(item, (tuple, list)):
        return sum(item_nbytes(v) for v in item)
    return 0


class CachedDataset(Dataset):
    """A dataset that keeps the items of ``base`` it has read, up to ``max_bytes``.

    Item ``i`` is ``base[i]``: read from ``base`` the first time and kept while
    the kept items' tensors (:func:`item_nbytes`) stay within ``max_bytes``;
    once the budget is spent, items that are not kept are read from ``base``
    every time. The items are returned as they were stored, so do not change
    them in place, and wrap only a deterministic ``base`` (random augmentation
    inside ``base`` would be frozen at its first draw; apply it after the cache).

    Items are kept only in the process that created the cache, not in
    DataLoader worker processes: a worker's copy would end with the worker,
    which :func:`hmglib.engine.fit` starts anew every epoch, so it would cost
    memory and save nothing. With ``num_workers > 0`` the cache serves what the
    main process has read (e.g. a test split scored by
    :func:`hmglib.engine.predict` in the main process) and streams the rest.

    Args:
        base: a map-style dataset.
        max_bytes: the most bytes of tensors to keep (``>= 0``; 0 keeps nothing).

    Attributes:
        base: the wrapped dataset.
        max_bytes: the budget.
        nbytes: the bytes kept so far (``<= max_bytes``).
        hits: reads served from the cache.
        misses: reads that went to ``base``.

    Other attributes (``tree``, ``targets``, ...) are those of ``base``.

    Raises:
        ValueError: ``max_bytes`` is negative or not an int, or ``base`` has no length.
        IndexError, TypeError: a bad index (as the synthetic worlds raise them).
    """

    def __init__(self, base: Dataset, max_bytes: int) -> None:
        max_bytes = check_int("CachedDataset", "max_bytes", max_bytes, 0,
                              hint="the budget in bytes, e.g. 512 * 2**20 for 512 MiB")
        if not hasattr(base, "__len__"):
            raise ValueError(f"CachedDataset: base ({type(base).__name__}) has no length; "
                             "wrap a map-style dataset (one with __len__ and __getitem__).")
        self.base = base
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._items: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        key = check_index("CachedDataset", index, len(self))
        if key in self._items:
            self.hits += 1
            return self._items[key]
        self.misses += 1
        item = self.base[key]
        if get_worker_info() is None:  # not in a DataLoader worker
            size = item_nbytes(item)
            if self.nbytes + size <= self.max_bytes:
                self._items[key] = item
                self.nbytes += size
        return item

    @property
    def kept(self) -> int:
        """How many items the cache holds."""
        return len(self._items)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: the base's attributes (tree, targets, ...)
        if name.startswith("_") or name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __repr__(self) -> str:
        return (f"CachedDataset({self.base!r}, {self.kept} of {len(self)} items kept, "
                f"{self.nbytes / 2**20:.1f} of {self.max_bytes / 2**20:.1f} MiB)")
