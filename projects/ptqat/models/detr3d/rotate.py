"""Nearest-neighbour image rotation as ``torchvision.transforms.functional.rotate``.

Pure torch (no torchvision): the inverse affine map torchvision builds for
``rotate(img, angle, center)`` followed by ``grid_sample(mode='nearest',
padding_mode='zeros', align_corners=False)``.  Positive angles rotate
counter-clockwise as displayed (rows growing downwards).
"""
import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def rotation_grid(angle_deg: float, height: int, width: int,
                  center: Optional[Sequence[float]] = None, dtype=torch.float32,
                  device=None) -> Tensor:
    """The ``(1, H, W, 2)`` sampling grid of torchvision's ``rotate``.

    Args:
        angle_deg: Counter-clockwise angle in degrees.
        center: Rotation centre ``(x, y)`` in pixels (pixel corners at
            integers); default the image centre.
    """
    cx, cy = (width * 0.5, height * 0.5) if center is None else (float(center[0]),
                                                                   float(center[1]))
    cx, cy = cx - width * 0.5, cy - height * 0.5
    theta = math.radians(-angle_deg)
    # torchvision's inverse affine matrix for angle = -angle_deg, no shear/scale
    a, b = math.cos(theta), math.sin(theta)
    m = [a, b, 0.0, -b, a, 0.0]
    m[2] += m[0] * -cx + m[1] * -cy + cx
    m[5] += m[3] * -cx + m[4] * -cy + cy
    mat = torch.tensor(m, dtype=torch.float64).view(2, 3)
    xs = torch.linspace(-width * 0.5 + 0.5, width * 0.5 - 0.5, width, dtype=torch.float64)
    ys = torch.linspace(-height * 0.5 + 0.5, height * 0.5 - 0.5, height, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    base = torch.stack([gx, gy, torch.ones_like(gx)], -1)  # (H, W, 3)
    out = base @ mat.T  # (H, W, 2) source pixel offsets from the image centre
    out = out / torch.tensor([width * 0.5, height * 0.5], dtype=torch.float64)
    return out.unsqueeze(0).to(dtype=dtype, device=device)


def rotate(img: Tensor, angle_deg: float, center: Optional[Sequence[float]] = None) -> Tensor:
    """Rotate ``(C, H, W)`` or ``(B, C, H, W)`` by ``angle_deg`` (nearest, zero fill)."""
    squeeze = img.dim() == 3
    x = img.unsqueeze(0) if squeeze else img
    if x.dim() != 4:
        raise ValueError(f'rotate: expected a (C, H, W) or (B, C, H, W) tensor, got shape '
                         f'{tuple(img.shape)}')
    grid = rotation_grid(angle_deg, x.shape[-2], x.shape[-1], center, x.dtype, x.device)
    out = F.grid_sample(x, grid.expand(x.shape[0], -1, -1, -1), mode='nearest',
                        padding_mode='zeros', align_corners=False)
    return out.squeeze(0) if squeeze else out


def rotate_nearest_np(mask: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate a 2-D numpy array about its centre (GridMask's ``Image.rotate``)."""
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
    return rotate(t, angle_deg)[0].numpy()
