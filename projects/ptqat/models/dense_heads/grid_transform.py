"""``BEVGridTransform``: resample a ``(B, C, Y, X)`` BEV feature onto another metric grid."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptqat.bev_geometry import grid_centers, grid_size

Bounds = Sequence[Sequence[float]]


class BEVGridTransform(nn.Module):
    """Bilinear ``grid_sample`` from the input grid to the output grid (no parameters).

    Both grids are ``(xbound, ybound)`` with ``bound = (min, max, step)`` metres and the
    tensors ``[y, x]`` (rows = y, columns = x). Output cell centres are sampled from the input
    with ``align_corners=False`` (the input's outer edges are its bounds); outside it: zeros.
    BEVFusion's ``BEVGridTransform`` with the BEVDet layout (H = y, W = x).

    Args:
        input_bounds: ``(xbound, ybound)`` of the input feature.
        output_bounds: ``(xbound, ybound)`` of the output.
    """

    def __init__(self, input_bounds: Bounds, output_bounds: Bounds):
        super().__init__()
        self.input_bounds = [tuple(float(v) for v in b) for b in input_bounds]
        self.output_bounds = [tuple(float(v) for v in b) for b in output_bounds]
        self.input_shape = (grid_size(self.input_bounds[1]), grid_size(self.input_bounds[0]))
        self.output_shape = (grid_size(self.output_bounds[1]), grid_size(self.output_bounds[0]))
        norm = []
        for (imin, imax, _), ob in zip(self.input_bounds, self.output_bounds):
            norm.append(torch.as_tensor((grid_centers(ob) - imin) / (imax - imin) * 2 - 1,
                                        dtype=torch.float32))
        u, v = norm  # x, y
        grid = torch.stack([u[None, :].expand(len(v), -1), v[:, None].expand(-1, len(u))], -1)
        self.register_buffer('grid', grid, persistent=False)  # (Y', X', 2)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, Y, X)`` -> ``(B, C, Y', X')``."""
        if tuple(x.shape[-2:]) != self.input_shape:
            raise ValueError(f'BEV feature {tuple(x.shape)} does not match the input grid '
                             f'{self.input_bounds} of shape (Y, X) = {self.input_shape}')
        grid = self.grid.to(x.dtype).expand(x.shape[0], -1, -1, -1)
        return F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)

    def extra_repr(self) -> str:
        return f'{self.input_bounds} -> {self.output_bounds}'
