"""Boxes as the book scores maps against them: squares around annotated points, and
boxes moved through an image pipeline onto the image a model reads.

Ground-truth boxes are float pixel ``xyxy`` (pixel ``j`` spans ``[j, j + 1)``);
an all-NaN row is padding (a hidden part, a box cropped away), which
:func:`hmglib.cam.pointing_game` and :func:`hmglib.cam.energy_in_box` skip.

* :func:`point_boxes`: a square around each annotated point (CUB-200-2011's part
  locations are points, not boxes);
* :func:`transform_boxes`: boxes moved through the steps of a deterministic
  ``torchvision.transforms.v2`` pipeline (a resize scales them, a centre crop
  shifts them), as the image is;
* :func:`pipeline_steps`: the steps of a nested pipeline;
* :func:`pad_boxes`: images with different numbers of boxes as one padded tensor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["BOX_STEPS", "pad_boxes", "point_boxes", "transform_boxes", "pipeline_steps"]


def pipeline_steps(transform: Callable) -> list[Callable]:
    """The steps of an image pipeline, in order: every container (``Compose``,
    ``RandomChoice``, ... whatever holds a ``.transforms`` list) opened up, recursively.

    ``pipeline_steps(Compose([Compose([ToImage(), ToDtype(...)]), Resize(550)]))`` is
    ``[ToImage(), ToDtype(...), Resize(550)]``.
    """
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, (list, tuple)):
        return [leaf for step in inner for leaf in pipeline_steps(step)]
    return [transform]


#: The steps :func:`transform_boxes` moves boxes through: each draws nothing and moves
#: boxes exactly as it moves the image (the pixel-value steps leave them as they are).
BOX_STEPS: tuple[type, ...] = (v2.Resize, v2.CenterCrop, v2.Pad, v2.ToImage, v2.ToDtype,
                               v2.ToPureTensor, v2.Normalize, v2.Grayscale, v2.Identity)


def _check_box_pipeline(transform: Callable) -> None:
    """Refuse a pipeline whose steps cannot move boxes as they move the image."""
    for step in pipeline_steps(transform):
        name = type(step).__name__
        if not isinstance(step, v2.Transform):
            raise TypeError(
                f"transform_boxes: the step {name} is not a torchvision.transforms.v2 "
                "transform, so it cannot move boxes with the image; build the pipeline from "
                "torchvision.transforms.v2 (v2.Resize, v2.CenterCrop, v2.Normalize, ...).")
        if not isinstance(step, BOX_STEPS):
            raise ValueError(
                f"transform_boxes: the step {name} may be random or is not known to move "
                "boxes as it moves the image; map boxes through a deterministic test pipeline "
                f"of {[c.__name__ for c in BOX_STEPS]} (e.g. hrn_transforms(False)).")


def transform_boxes(boxes: torch.Tensor, transform: Callable | None,
                    size: tuple[int, int]) -> torch.Tensor:
    """Move boxes through an image pipeline, onto the image it outputs.

    The boxes go through the very steps the image goes through (torchvision's v2
    transforms move ``BoundingBoxes`` as they move images): a resize scales them, a
    centre crop shifts them by the crop's corner; steps that change only the pixel
    values (``ToImage``, ``ToDtype``, ``Normalize``) leave them as they are. The
    result is clipped to the output canvas; a box left with no area (cropped away,
    nothing of it to point at) becomes an all-NaN row, as an invisible part is.

    Args:
        boxes: ``(4,)`` or ``(K, 4)`` float pixel ``xyxy`` on the input image (pixel
            ``j`` spans ``[j, j + 1)``); all-NaN rows (invisible parts) stay NaN.
        transform: a deterministic ``torchvision.transforms.v2`` pipeline (as a test
            split's), or ``None`` for no change.
        size: ``(H, W)`` of the input image, in pixels.

    Returns:
        float32 of the shape of ``boxes``: pixel ``xyxy`` on the output image, inside
        ``[0, W_out] x [0, H_out]``, or all NaN.

    Raises:
        ValueError: ``boxes`` not ``(4,)`` or ``(K, 4)``, a row partly NaN, a bad
            ``size``, or a random step in the pipeline.
        TypeError: a step that is not a v2 transform.
    """
    t = torch.as_tensor(boxes, dtype=torch.float32)
    if t.dim() not in (1, 2) or t.shape[-1] != 4:
        raise ValueError(f"transform_boxes: boxes must be (4,) or (K, 4) float pixel xyxy, "
                         f"got shape {tuple(t.shape)}.")
    if len(size) != 2 or min(int(v) for v in size) < 1:
        raise ValueError(f"transform_boxes: size must be the input image's (H, W), got {size}.")
    flat = t.reshape(-1, 4)  # (K, 4)
    nan = torch.isnan(flat)  # (K, 4)
    if bool((nan.any(-1) & ~nan.all(-1)).any()):
        raise ValueError("transform_boxes: a box is partly NaN; a row is either four numbers "
                         "or all NaN (an invisible part).")
    if transform is None:
        return t.clone()
    _check_box_pipeline(transform)
    real = ~nan.all(-1)  # (K,)
    if not bool(real.any()):
        return t.clone()  # nothing but padding
    moved = transform(tv_tensors.BoundingBoxes(
        flat[real], format="XYXY", canvas_size=(int(size[0]), int(size[1]))))
    if not isinstance(moved, tv_tensors.BoundingBoxes) or moved.shape != flat[real].shape:
        raise TypeError("transform_boxes: the pipeline did not return the boxes it was given; "
                        "use a torchvision.transforms.v2 pipeline.")
    h, w = moved.canvas_size
    xy = moved.as_subclass(torch.Tensor).float()  # (K_real, 4)
    limit = torch.tensor([w, h, w, h], dtype=torch.float32)
    out = torch.full_like(flat, float("nan"))  # (K, 4)
    out[real] = torch.minimum(xy.clamp_min(0.0), limit)
    gone = (out[:, 2] <= out[:, 0]) | (out[:, 3] <= out[:, 1])  # (K,): cropped away
    out[gone] = float("nan")
    return out.reshape(t.shape)


def point_boxes(points: torch.Tensor, half_side: float | torch.Tensor) -> torch.Tensor:
    """Square boxes around annotated points (CUB's part locations), for scoring maps
    against parts that are points, not boxes.

    Args:
        points: ``(B, P, 3)`` float ``(x, y, visible)`` in pixels (CUB's
            ``part_locs``, after any resize of the image).
        half_side: half the square's side in pixels, one number or ``(B,)``
            (e.g. a tenth of the bird box's longer side).

    Returns:
        ``(B, P, 4)`` float pixel ``xyxy``; rows of an invisible part are NaN
        (padding for :func:`pointing_game` and :func:`energy_in_box`).
    """
    p = torch.as_tensor(points, dtype=torch.float32)
    if p.dim() != 3 or p.shape[-1] != 3:
        raise ValueError(f"point_boxes: points must be (B, P, 3) (x, y, visible), got shape "
                         f"{tuple(p.shape)}.")
    half = torch.as_tensor(half_side, dtype=torch.float32).reshape(-1, 1)  # (B or 1, 1)
    if not bool((half > 0).all()) or not bool(torch.isfinite(half).all()):
        raise ValueError(f"point_boxes: half_side must be positive and finite pixels, got "
                         f"{half.flatten()[:5].tolist()}.")
    x, y = p[..., 0], p[..., 1]  # (B, P)
    out = torch.stack([x - half, y - half, x + half, y + half], -1)  # (B, P, 4)
    return torch.where((p[..., 2] > 0)[..., None], out, torch.full_like(out, float("nan")))


def pad_boxes(boxes: list[torch.Tensor]) -> torch.Tensor:
    """Each image's boxes as one tensor, padded with all-NaN rows.

    Args:
        boxes: ``B`` tensors ``(K_i, 4)`` float pixel ``xyxy`` (``K_i`` may be 0: an
            image with no box of this kind).

    Returns:
        ``(B, K, 4)`` float32 with ``K = max(1, max K_i)``; image ``i``'s boxes first,
        then NaN rows (an image without a box is all NaN).
    """
    rows = [torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes]
    out = torch.full((len(rows), max([1, *(len(r) for r in rows)]), 4), float("nan"))
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out  # (B, K, 4)
