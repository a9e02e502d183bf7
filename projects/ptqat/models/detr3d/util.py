"""Box (de)normalisation shared by the DETR3D-style heads (BEVFormer, SparseBEV).

Boxes follow mmdet3d 1.x ``LiDARInstance3DBoxes``: ``(x, y, z, x_size, y_size,
z_size, yaw, vx, vy)`` with ``z`` the *gravity* centre here (the head converts
to the bottom centre when it builds ``LiDARInstance3DBoxes``).  The regression
code is ``(cx, cy, log x_size, log y_size, cz, log z_size, sin yaw, cos yaw,
vx, vy)`` -- upstream's ``(cx, cy, w, l, cz, h, sin, cos, vx, vy)`` layout.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor


def normalize_bbox(bboxes: Tensor, pc_range: Optional[Sequence[float]] = None) -> Tensor:
    """``(..., 7 or 9)`` boxes -> ``(..., 8 or 10)`` regression targets.

    Sizes are in metres (log-encoded), yaw in radians; ``pc_range`` is unused
    (kept for the upstream signature).
    """
    cx, cy, cz = bboxes[..., 0:1], bboxes[..., 1:2], bboxes[..., 2:3]
    w, l, h = bboxes[..., 3:4].log(), bboxes[..., 4:5].log(), bboxes[..., 5:6].log()
    rot = bboxes[..., 6:7]
    parts = [cx, cy, w, l, cz, h, rot.sin(), rot.cos()]
    if bboxes.size(-1) > 7:
        parts += [bboxes[..., 7:8], bboxes[..., 8:9]]
    return torch.cat(parts, dim=-1)


def denormalize_bbox(normalized: Tensor, pc_range: Optional[Sequence[float]] = None) -> Tensor:
    """Inverse of :func:`normalize_bbox`: ``(..., 8 or 10)`` -> ``(..., 7 or 9)``."""
    rot = torch.atan2(normalized[..., 6:7], normalized[..., 7:8])
    cx, cy, cz = normalized[..., 0:1], normalized[..., 1:2], normalized[..., 4:5]
    w, l, h = normalized[..., 2:3].exp(), normalized[..., 3:4].exp(), normalized[..., 5:6].exp()
    parts = [cx, cy, cz, w, l, h, rot]
    if normalized.size(-1) > 8:
        parts += [normalized[..., 8:9], normalized[..., 9:10]]
    return torch.cat(parts, dim=-1)
