"""3D box geometry shared by the data transforms and the models (neither imports the other)."""
from typing import Union

import numpy as np
import torch
from torch import Tensor

from mmdet3d.structures import BaseInstance3DBoxes

__all__ = ['transform_boxes']


def transform_boxes(boxes: BaseInstance3DBoxes,
                    matrix: Union[Tensor, np.ndarray]) -> BaseInstance3DBoxes:
    """Apply a 4x4 transform ``p' = A p + t`` to z-up boxes.

    The gravity centre is transformed as a point, the heading vector
    ``(cos yaw, sin yaw, 0)`` and the velocity ``(vx, vy, 0)`` by ``A``
    (so rotations about z and mirror flips are handled exactly), and the
    sizes are multiplied by ``|det A|^(1/3)`` (1 for rigid transforms).
    Assumes ``A`` keeps the z axis vertical (yaw-only rotation, as for
    nuScenes' lidar2ego and BEVDet's bda).

    Returns:
        A new box object of the same type (bottom-centre convention kept).
    """
    t = boxes.tensor
    m = torch.as_tensor(matrix, dtype=torch.float64, device=t.device)
    A, trans = m[:3, :3], m[:3, 3]
    out = t.double().clone()
    if t.shape[0] > 0:
        scale = torch.det(A).abs().pow(1.0 / 3.0)
        dims = out[:, 3:6] * scale
        center = boxes.gravity_center.double() @ A.T + trans
        yaw = out[:, 6]
        heading = torch.stack(
            [torch.cos(yaw), torch.sin(yaw),
             torch.zeros_like(yaw)], dim=1) @ A.T
        out[:, 0:2] = center[:, 0:2]
        out[:, 2] = center[:, 2] - dims[:, 2] * 0.5
        out[:, 3:6] = dims
        out[:, 6] = torch.atan2(heading[:, 1], heading[:, 0])
        if t.shape[1] >= 9:
            vel = torch.cat([out[:, 7:9], torch.zeros_like(yaw)[:, None]],
                            dim=1) @ A.T
            out[:, 7:9] = vel[:, :2]
    return type(boxes)(
        out.to(t.dtype), box_dim=t.shape[1], with_yaw=boxes.with_yaw)
