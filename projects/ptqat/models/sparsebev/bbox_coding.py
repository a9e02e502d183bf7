"""SparseBEV's query box code: ``encode_bbox`` / ``decode_bbox``.

The decoder keeps each query's box as a 10-vector ``(x, y, z, log x_size, log y_size,
log z_size, sin yaw, cos yaw, vx, vy)``: ``x, y, z`` (gravity centre) normalised to
``[0, 1]`` over ``pc_range`` (metres), sizes in log-metres, velocity in m/s. This is not the
DETR3D regression code of :mod:`ptqat.models.detr3d.util` (``(cx, cy, w, l, cz, h, ...)``,
metres), which the head produces for the loss and the decoder.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor


def encode_bbox(bboxes: Tensor, pc_range: Optional[Sequence[float]] = None) -> Tensor:
    """``(..., 7 or 9)`` boxes ``(x, y, z, x_size, y_size, z_size, yaw[, vx, vy])`` (metres,
    radians, m/s) -> ``(..., 8 or 10)`` query codes (xyz normalised when ``pc_range``)."""
    xyz = bboxes[..., 0:3].clone()
    if pc_range is not None:
        lo = xyz.new_tensor(pc_range[:3])
        hi = xyz.new_tensor(pc_range[3:6])
        xyz = (xyz - lo) / (hi - lo)
    rot = bboxes[..., 6:7]
    parts = [xyz, bboxes[..., 3:6].log(), rot.sin(), rot.cos()]
    if bboxes.shape[-1] > 7:
        parts.append(bboxes[..., 7:9])
    return torch.cat(parts, dim=-1)


def decode_bbox(codes: Tensor, pc_range: Optional[Sequence[float]] = None) -> Tensor:
    """Inverse of :func:`encode_bbox`: ``(..., 8 or 10)`` -> ``(..., 7 or 9)``."""
    xyz = codes[..., 0:3]
    if pc_range is not None:
        lo = xyz.new_tensor(pc_range[:3])
        hi = xyz.new_tensor(pc_range[3:6])
        xyz = xyz * (hi - lo) + lo
    rot = torch.atan2(codes[..., 6:7], codes[..., 7:8])
    parts = [xyz, codes[..., 3:6].exp(), rot]
    if codes.shape[-1] > 8:
        parts.append(codes[..., 8:10])
    return torch.cat(parts, dim=-1)
