"""The shared argument validators: good values come back in their plain type, bad
ones raise an error that names the caller, the argument and the allowed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hmglib.checks import (
    check_choice,
    check_index,
    check_int,
    check_real,
    check_seed,
    check_share,
)


# ------------------------------------------------------------------ integers
@pytest.mark.parametrize("value", [3, np.int64(3), torch.tensor(3), np.uint8(3)])
def test_check_int_accepts_integers_and_returns_int(value: object) -> None:
    out = check_int("Owner", "count", value, 1)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, 1.5, True, "3", None, torch.tensor([1, 2]),
                                   torch.tensor(2.0)])
def test_check_int_refuses_and_names_the_argument(value: object) -> None:
    with pytest.raises(ValueError, match=r"^Owner: count=.* must be an int >= 1\.$"):
        check_int("Owner", "count", value, 1)


def test_check_int_lowest_is_inclusive_and_hint_is_shown() -> None:
    assert check_int("F", "n", 16, 16) == 16
    with pytest.raises(ValueError, match=r"F: n=15 must be an int >= 16 \(the smallest canvas\)"):
        check_int("F", "n", 15, 16, hint="the smallest canvas")


def test_check_seed() -> None:
    assert check_seed("coarsen_labels", 0) == 0
    assert check_seed("f", np.int32(7)) == 7
    with pytest.raises(ValueError, match=r"coarsen_labels: seed=-1 must be an int >= 0"):
        check_seed("coarsen_labels", -1)
    with pytest.raises(ValueError, match=r"f: world_seed=1.5"):
        check_seed("f", 1.5, name="world_seed")


# -------------------------------------------------------------- real numbers
@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.float64(0.25), torch.tensor(0.5)])
def test_check_real_accepts_numbers_and_returns_float(value: object) -> None:
    out = check_real("F", "x", value, 0.0, 1.0)
    assert out == float(value) and type(out) is float


def test_check_real_ends_open_and_closed() -> None:
    assert check_real("F", "x", 0.0, 0.0, 1.0) == 0.0  # closed by default
    assert check_real("F", "x", 1.0, 0.0, 1.0) == 1.0
    with pytest.raises(ValueError, match=r"F: x=0.0 must be a number in \(0, 1\]"):
        check_real("F", "x", 0.0, 0.0, 1.0, closed_low=False)
    with pytest.raises(ValueError, match=r"F: x=1.0 must be a number in \[0, 1\)"):
        check_real("F", "x", 1.0, 0.0, 1.0, closed_high=False)
    assert check_real("F", "x", -1e300) == -1e300  # unbounded by default
    assert check_real("F", "x", math.inf) == math.inf


@pytest.mark.parametrize("value", [float("nan"), True, "0.5", None, 1.5, -0.1,
                                   torch.tensor([0.1, 0.2]), complex(0.5, 0)])
def test_check_real_refuses_and_names_the_argument(value: object) -> None:
    with pytest.raises(ValueError, match=r"^MultiShapes: cohesion=.* must be a number in "
                                         r"\[0, 1\] \(a reason\)\.$"):
        check_real("MultiShapes", "cohesion", value, 0.0, 1.0, hint="a reason")


def test_check_share() -> None:
    assert check_share("drop_labels", "known", 0.3) == 0.3
    assert check_share("drop_labels", "known", torch.tensor(1.0)) == 1.0
    for bad in (1.2, -0.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match=r"drop_labels: known=.* must be a number in "
                                             r"\[0, 1\] \(a share, e\.g\. 0\.3 for 30 %\)"):
            check_share("drop_labels", "known", bad)


# ------------------------------------------------------------------- choices
def test_check_choice_returns_the_value() -> None:
    assert check_choice("HierShapes", "split", "val", ("train", "val", "test")) == "val"
    assert check_choice("F", "mode", "a", {"a": 1, "b": 2}) == "a"  # a dict's keys


@pytest.mark.parametrize("value", ["dev", "Train", None, 1, ["train"], torch.tensor([1, 2])])
def test_check_choice_lists_the_choices(value: object) -> None:
    with pytest.raises(ValueError, match=r"^HierShapes: unknown split=.*; choose one of "
                                         r"\['train', 'val', 'test'\]\.$"):
        check_choice("HierShapes", "split", value, ("train", "val", "test"))


def test_check_choice_hint() -> None:
    with pytest.raises(ValueError, match=r"rule='x'; choose one of \['a'\] \(why\)"):
        check_choice("f", "rule", "x", ["a"], hint="why")


# ------------------------------------------------------------------- indices
@pytest.mark.parametrize(("index", "expected"), [(0, 0), (4, 4), (-1, 4), (-5, 0),
                                                 (np.int64(2), 2), (torch.tensor(3), 3)])
def test_check_index_wraps_negative_indices(index: object, expected: int) -> None:
    out = check_index("HierShapes", index, 5)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("index", [5, -6, 100])
def test_check_index_out_of_range(index: int) -> None:
    with pytest.raises(IndexError, match=rf"^HierShapes: index {index} is outside the 5 "
                                         r"samples \(use 0\.\.4, or -5\.\.-1"):
        check_index("HierShapes", index, 5)


def test_check_index_of_an_empty_dataset() -> None:
    with pytest.raises(IndexError, match="outside the 0 samples: it is empty"):
        check_index("Empty", 0, 0)


@pytest.mark.parametrize("index", ["3", 1.0, True, None, slice(0, 2), torch.tensor([1, 2])])
def test_check_index_refuses_non_integers(index: object) -> None:
    with pytest.raises(TypeError, match=r"^CUB200: index must be an int, got "):
        check_index("CUB200", index, 5)
