"""The data chapter's worlds: built from a profile without rendering, streamed
through a memory-bounded cache, and the zoomed view."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from hmglib import profile
from hmglib.data import CachedDataset, HierShapes, ZoomOnObject, profile_worlds
from hmglib.data.cache import item_nbytes
from hmglib.data.synthetic import render


class _Counted(Dataset):
    """``n`` items of ``(3, side, side)`` float32, counting every read."""

    def __init__(self, n: int, side: int = 4) -> None:
        self.n, self.side, self.reads = n, side, 0
        self.tree = "a tree"

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self.reads += 1
        return torch.full((3, self.side, self.side), float(index)), index


# ------------------------------------------------------------------ profile_worlds
def test_gpu_worlds_are_built_without_rendering_a_single_image(monkeypatch) -> None:
    monkeypatch.delenv("HMG_QUICK", raising=False)
    monkeypatch.setenv("HMG_PROFILE", "gpu")

    def refuse(*args, **kwargs):
        raise AssertionError("an image was rendered while the worlds were built")

    for name in ("background", "paint_silhouette", "paint_marking", "add_noise"):
        monkeypatch.setattr(render, name, refuse)
    prof = profile.current()
    assert prof.name == "gpu"
    worlds = profile_worlds(prof)
    n, test = prof.samples_per_class, max(10, prof.samples_per_class // 3)
    species = len(worlds.hier.tree.leaves)
    expected = {"hier": n * species, "hier_test": test * species, "small": n * species,
                "small_test": test * species, "multi": 12 * n}
    for view in ("levels", "full view", "2× zoom"):
        expected[f"{view}/train"], expected[f"{view}/test"] = n * species, test * species
    lengths = {name: len(data) for name, data in worlds.datasets().items()}
    assert lengths == expected
    assert lengths["hier"] == 8_100 and worlds.hier.image_size == 448
    assert worlds.input_size == 224
    # the probes' targets and trees come without rendering, too
    train, _ = worlds.inputs["levels"]
    assert torch.equal(train.targets, worlds.hier.targets)
    assert train.tree.names == worlds.hier.tree.names
    # each cache may hold cache_mib; all six hold far less than one stacked split
    caches = [d for d in worlds.datasets().values() if isinstance(d, CachedDataset)]
    assert len(caches) == 6 and all(c.nbytes == 0 for c in caches)
    held = sum(c.max_bytes for c in caches)
    stacked = lengths["hier"] * 3 * 448 * 448 * 4
    assert held <= 4 * 2**30 < 16 * 2**30 < stacked


def test_quick_worlds_stream_the_same_images_as_the_worlds() -> None:
    worlds = profile_worlds(profile.get("quick"))
    side = worlds.input_size
    train, test = worlds.inputs["levels"]
    image, target = train[5]
    assert image.shape == (3, side, side) and target == int(worlds.hier.targets[5])
    resized = torch.nn.functional.interpolate(worlds.hier[5][0][None], size=(side, side),
                                              mode="bilinear", antialias=True,
                                              align_corners=False)[0]
    assert torch.allclose(image, resized, atol=1e-6)
    zoom, _ = worlds.inputs["2× zoom"]
    crop, _ = zoom[3]
    top, left = zoom.base.window(3)
    assert torch.equal(crop, worlds.small[3][0][:, top:top + side, left:left + side])
    assert len(test) == len(worlds.hier_test)


def test_profile_worlds_refuses_a_profile_name() -> None:
    with pytest.raises(ValueError, match=r"profile must be a hmglib.profile.Profile.*str"):
        profile_worlds("gpu")


# ------------------------------------------------------------------ the cache
def test_cache_keeps_items_up_to_its_budget_and_streams_the_rest() -> None:
    base = _Counted(10)
    one = item_nbytes(base[0])  # (3, 4, 4) float32 + an int
    base.reads = 0
    cache = CachedDataset(base, max_bytes=3 * one + one // 2)  # room for three items
    for _ in range(3):  # three epochs
        for i in range(10):
            image, target = cache[i]
            assert target == i and float(image[0, 0, 0]) == i
    assert cache.kept == 3 and cache.nbytes == 3 * one <= cache.max_bytes
    assert base.reads == 10 + 2 * 7  # the kept three are read once
    assert cache.hits == 2 * 3 and cache.misses == base.reads
    assert cache.tree == "a tree" and len(cache) == 10  # the base's attributes


def test_cache_with_a_zero_budget_keeps_nothing_and_negative_indices_count_from_the_end() -> None:
    base = _Counted(4)
    cache = CachedDataset(base, 0)
    assert cache[-1][1] == 3 and cache[3][1] == 3
    assert cache.kept == 0 and cache.nbytes == 0 and base.reads == 2


def test_cache_counts_the_storage_a_view_keeps_alive() -> None:
    canvas = torch.zeros(3, 64, 64)
    crop = canvas[:, :8, :8]
    assert item_nbytes((crop, 1)) == canvas.numel() * 4
    assert item_nbytes({"a": torch.zeros(2, dtype=torch.int64), "b": [torch.zeros(3)]}) == 28


def test_cache_keeps_nothing_inside_dataloader_workers() -> None:
    cache = CachedDataset(_Counted(8), max_bytes=2**20)
    batches = list(DataLoader(cache, batch_size=4, num_workers=2))
    assert torch.cat([y for _, y in batches]).tolist() == list(range(8))
    assert cache.kept == 0  # the workers' copies ended with them
    list(DataLoader(cache, batch_size=4))  # the main process keeps them
    assert cache.kept == 8


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"max_bytes": -1}, ValueError, r"CachedDataset: max_bytes=-1 must be an int >= 0"),
    ({"max_bytes": 1.5}, ValueError, r"max_bytes=1.5 must be an int"),
])
def test_cache_bad_budget(kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        CachedDataset(_Counted(2), **kwargs)


def test_cache_bad_base_and_index() -> None:
    with pytest.raises(ValueError, match="has no length"):
        CachedDataset(iter([1, 2]), 10)  # type: ignore[arg-type]
    cache = CachedDataset(_Counted(2), 10)
    with pytest.raises(IndexError, match="outside the 2 samples"):
        cache[2]


# ------------------------------------------------------------------ the zoom
def test_zoom_centres_the_object_and_stays_inside_the_canvas() -> None:
    world = HierShapes(samples_per_class=2, image_size=64, object_scale=0.3)
    zoom = ZoomOnObject(world, 32)
    for i in range(len(world)):
        top, left = zoom.window(i)
        assert 0 <= top <= 32 and 0 <= left <= 32
        x0, y0, x1, y1 = world.boxes(i).object.tolist()
        assert left <= x0 and x1 <= left + 32 and top <= y0 and y1 <= top + 32
    crop, target = zoom[0]
    assert crop.shape == (3, 32, 32) and target == world[0][1]
    assert crop.untyped_storage().nbytes() == 3 * 32 * 32 * 4  # a copy, not a view


def test_zoom_bad_arguments() -> None:
    world = HierShapes(samples_per_class=1, image_size=32)
    with pytest.raises(ValueError, match="larger than the canvas"):
        ZoomOnObject(world, 33)
    with pytest.raises(ValueError, match="side=0 must be an int >= 1"):
        ZoomOnObject(world, 0)
    with pytest.raises(ValueError, match="has an image transform"):
        ZoomOnObject(HierShapes(samples_per_class=1, image_size=32, transform=lambda x: x), 16)
    with pytest.raises(ValueError, match=r"needs boxes\(i\) and image_size"):
        ZoomOnObject(_Counted(2), 2)  # type: ignore[arg-type]
