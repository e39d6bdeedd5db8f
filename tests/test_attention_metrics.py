"""RA-CNN's metrics: box IoU, centre hits and the attention report, by hand and
against torchvision."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import box_iou

from hmglib.data.synthetic.hier_shapes import hier_shapes_tree
from hmglib.metrics import attention_report, box_iou_pairs, centre_hits
from hmglib.models.racnn import RACNNOutput

# (2, 2, 2): nodes 0-1 orders | 2-5 families | 6-13 species (species i: family i // 2,
# order i // 4)
TREE = hier_shapes_tree((2, 2, 2))
LEAF0 = TREE.offset(-1)
K = TREE.level_sizes[-1]


def random_boxes(n: int, seed: int) -> torch.Tensor:
    """``(n, 4)`` float64 xyxy boxes on a 10 x 10 canvas, some of them disjoint."""
    g = torch.Generator().manual_seed(seed)
    xy = 10 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    wh = 4 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.cat([xy, xy + wh], 1)


# ------------------------------------------------------------------ box_iou_pairs
def test_box_iou_pairs_is_the_diagonal_of_torchvision() -> None:
    a, b = random_boxes(200, 0), random_boxes(200, 1)
    iou = box_iou_pairs(a, b)
    assert iou.shape == (200,) and iou.dtype == torch.float64
    torch.testing.assert_close(iou, box_iou(a, b).diagonal())
    assert (iou == 0).any() and (iou > 0).any()  # disjoint and overlapping pairs
    torch.testing.assert_close(box_iou_pairs(a.float(), b.float()), iou)  # float32 is taken
    torch.testing.assert_close(box_iou_pairs(b, a), iou)  # symmetric


def test_box_iou_pairs_by_hand() -> None:
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 2, 2], [0, 0, 2, 2],
                      [1, 1, 1, 1]])
    b = torch.tensor([[3.0, 3, 5, 5], [0, 0, 4, 4], [1, 1, 3, 3], [1, 1, 3, 3], [2, 0, 4, 2],
                      [1, 1, 1, 1]])
    # disjoint, identical, nested (4 / 16), overlapping (1 / 7), touching, both empty
    expected = torch.tensor([0.0, 1.0, 0.25, 1 / 7, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(box_iou_pairs(a, b), expected)
    assert box_iou_pairs(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0,)


@pytest.mark.parametrize(("a", "b", "message"), [
    (torch.zeros(2, 4), torch.zeros(3, 4), r"a \(2, 4\) and b \(3, 4\) differ"),
    (torch.zeros(2, 3), torch.zeros(2, 3), r"a must be a tensor \(B, 4\) of xyxy boxes"),
    (torch.zeros(4), torch.zeros(4), r"a must be a tensor \(B, 4\)"),
    (torch.tensor([[2.0, 0, 1, 1]]), torch.zeros(1, 4), "x1 >= x0"),
    (torch.zeros(1, 4), torch.tensor([[0.0, 0, 1, math.nan]]), "b must be finite"),
])
def test_box_iou_pairs_bad_input(a, b, message) -> None:
    with pytest.raises(ValueError, match=message):
        box_iou_pairs(a, b)


# ------------------------------------------------------------------ centre_hits
def test_centre_hits_by_hand() -> None:
    regions = torch.tensor([[0.0, 0, 10, 10],   # centre (5, 5)
                            [0, 0, 10, 10],
                            [0, 0, 10, 10],
                            [0, 0, 10, 10],
                            [4, 6, 6, 8],       # centre (5, 7)
                            [0, 0, 10, 10]])
    boxes = torch.tensor([[4.0, 4, 6, 6],      # inside
                          [0, 0, 5, 5],        # on the corner: edges included
                          [5, 5, 9, 9],        # on the other corner
                          [5.001, 0, 9, 9],    # just right of the centre
                          [0, 0, 10, 6.999],   # x inside, y just below
                          [5, 5, 5, 5]])       # a point box at the centre
    assert centre_hits(regions, boxes).tolist() == [True, True, True, False, False, True]
    assert centre_hits(regions, boxes).dtype == torch.bool


def test_centre_hits_bad_input() -> None:
    with pytest.raises(ValueError, match=r"centre_hits: regions must be a tensor \(B, 4\)"):
        centre_hits(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"centre_hits: boxes must be finite xyxy"):
        centre_hits(torch.zeros(1, 4), torch.tensor([[1.0, 1, 0, 0]]))


# ------------------------------------------------------------------ attention_report
def logits_row(pred: int, true: int, true_logit: float) -> list[float]:
    """Logits of K classes: 3 at ``pred``, ``true_logit`` at ``true`` (if other), 0 else."""
    row = [0.0] * K
    row[true] = true_logit
    row[pred] = 3.0
    return row


# species targets 0, 3, 5, 6 | families 0, 1, 2, 3 | orders 0, 0, 1, 1
Y = [0, 3, 5, 6]
SCALE1 = [(1, 1.0), (3, 0.0), (2, 0.0), (0, 0.0)]  # (prediction, true class's logit)
SCALE2 = [(0, 0.0), (3, 0.0), (4, -1.0), (7, 0.5)]
IMAGE = (64, 64)


def report_output(fused: bool = True) -> RACNNOutput:
    logits = torch.tensor([[logits_row(p, y, v) for p, v in (s1, s2)]
                           for y, s1, s2 in zip(Y, SCALE1, SCALE2, strict=True)])  # (4, 2, K)
    fused_logits = torch.tensor([logits_row(y, y, 0.0) for y in Y]) if fused else None
    regions = torch.tensor([[(0.5, 0.5, 0.5), (0.5, 0.5, 0.25)],      # (16, 16, 48, 48)
                            [(0.5, 0.5, 0.5), (0.25, 0.25, 0.25)],    # (0, 0, 32, 32)
                            [(0.5, 0.5, 0.5), (0.5, 0.5, 0.25)],      # (16, 16, 48, 48)
                            [(0.5, 0.5, 0.5), (0.75, 0.25, 0.125)]])  # (40, 8, 56, 24)
    return RACNNOutput(logits, fused_logits, torch.full((4, 1, 3), 0.25), regions)


OBJECT = torch.tensor([[16.0, 16, 48, 48], [0, 0, 32, 32], [0, 0, 64, 64], [40, 0, 64, 24]])
PART = torch.tensor([[28.0, 28, 36, 36]]).expand(4, 4)


def test_attention_report_by_hand() -> None:
    out = report_output()
    # the softmax of a row with 3 at the prediction, v at the true class and 0 at
    # the 6 others: p_true = e^v / (e^3 + e^v + 6), or e^3 / (e^3 + 7) when right
    p1 = [math.e / (math.exp(3) + math.e + 6), math.exp(3) / (math.exp(3) + 7),
          1 / (math.exp(3) + 7), 1 / (math.exp(3) + 7)]
    p2 = [math.exp(3) / (math.exp(3) + 7), math.exp(3) / (math.exp(3) + 7),
          math.exp(-1) / (math.exp(3) + math.exp(-1) + 6),
          math.exp(0.5) / (math.exp(3) + math.exp(0.5) + 6)]
    torch.testing.assert_close(out.scale_probabilities[torch.arange(4), :, Y],
                               torch.tensor([p1, p2]).T)
    rep = attention_report(out, torch.tensor(Y) + LEAF0, TREE,
                           boxes={"object": OBJECT, "part": PART}, image_size=IMAGE)
    expected = {
        # species: scale 1 right on image 1; scale 2 on 0 and 1; fused on all
        "OA/scale 1": 25.0, "OA/scale 2": 50.0, "OA/fused": 100.0,
        # p_true rises on 0 (wrong -> right) and 3, stays on 1, falls on 2
        "rise/scale 1-2": 50.0,
        # families: scale 1 predicts 0, 1, 1, 0 (truth 0, 1, 2, 3); scale 2 2 of 4 wrong
        # species but every family right; orders: 0, 0, 0, 0 and 0, 0, 1, 1 (truth 0, 0, 1, 1)
        "OA/scale 1/order": 50.0, "OA/scale 2/order": 100.0,
        "OA/scale 1/family": 50.0, "OA/scale 2/family": 100.0,
        # scale 1 is the whole 64 x 64 image: IoU 1024 / 4096 with the 32-px objects,
        # 1 with the whole-image object, 576 / 4096 with the 24-px corner one; its
        # centre (32, 32) is on the edge of objects 1 and 2 (a hit), outside object 3
        "IoU/object/scale 1": (0.25 + 0.25 + 1 + 576 / 4096) / 4,
        "hit/object/scale 1": 75.0,
        "IoU/object/scale 2": (1 + 1 + 0.25 + 256 / 576) / 4,
        "hit/object/scale 2": 100.0,
        # the 8-px part at the centre: inside every scale-1 region; at scale 2 inside
        # regions 0 and 2, overlapping region 1 by 4 x 4 px, away from region 3
        "IoU/part/scale 1": 64 / 4096,
        "hit/part/scale 1": 100.0,
        "IoU/part/scale 2": (64 / 1024 + 16 / (1024 + 64 - 16) + 64 / 1024 + 0) / 4,
        "hit/part/scale 2": 50.0,
    }
    assert rep.keys() == expected.keys()
    for key, value in expected.items():
        assert rep[key] == pytest.approx(value), key


def test_attention_report_without_tree_boxes_or_fused() -> None:
    out = report_output(fused=False)
    rep = attention_report(out, torch.tensor(Y))  # class indices
    assert rep == pytest.approx({"OA/scale 1": 25.0, "OA/scale 2": 50.0,
                                 "rise/scale 1-2": 50.0})
    with_tree = attention_report(out, torch.tensor(Y) + LEAF0, TREE)
    assert {k: with_tree[k] for k in rep} == pytest.approx(rep)


def test_attention_report_reads_image_size_as_height_width() -> None:
    # a 32 x 64 (H x W) image: region (0.25, 0.75, 0.25) is x in [0, 32), y in [16, 32)
    regions = torch.tensor([[(0.5, 0.5, 0.5), (0.25, 0.75, 0.25)]])
    out = RACNNOutput(torch.zeros(1, 2, K), None, torch.full((1, 1, 3), 0.25), regions)
    rep = attention_report(out, torch.tensor([LEAF0]), TREE,
                           boxes={"part": torch.tensor([[0.0, 16, 32, 32]])}, image_size=(32, 64))
    assert rep["IoU/part/scale 2"] == pytest.approx(1.0)
    assert rep["IoU/part/scale 1"] == pytest.approx(512 / 2048)


def test_attention_report_bad_input() -> None:
    out = report_output()
    with pytest.raises(ValueError, match=r"boxes need image_size=\(H, W\)"):
        attention_report(out, torch.tensor(Y) + LEAF0, TREE, boxes={"object": OBJECT})
    with pytest.raises(ValueError, match="targets must be leaf node indices"):
        attention_report(out, torch.tensor([6, 7, 2, 8]), TREE)  # 2 is a family
    with pytest.raises(ValueError, match="targets must be leaf node indices"):
        attention_report(out, torch.tensor([0, 7, 8, 9]), TREE)  # 0 is an order
    with pytest.raises(ValueError, match="3 targets for 4 outputs"):
        attention_report(out, torch.tensor(Y[:3]) + LEAF0, TREE)
    with pytest.raises(ValueError, match=r"class indices \(B,\) in 0\.\."):
        attention_report(out, torch.tensor([0, 1, 2, 99]))  # no tree: a class out of range
