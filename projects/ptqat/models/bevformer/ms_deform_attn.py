"""Multi-scale deformable attention core: mmcv's CUDA kernel on GPU, its pytorch path on CPU."""
import math

import torch
from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                              multi_scale_deformable_attn_pytorch)
from torch import Tensor, nn


def ms_deform_attn(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                   sampling_locations: Tensor, attention_weights: Tensor,
                   im2col_step: int = 64) -> Tensor:
    """Bilinear sampling of ``value`` at ``sampling_locations``, weighted and summed.

    Args:
        value: ``(B, sum_l H_l*W_l, heads, C/heads)``.
        spatial_shapes: ``(L, 2)`` long, ``(H_l, W_l)`` per level.
        level_start_index: ``(L,)`` long.
        sampling_locations: ``(B, Q, heads, L, P, 2)`` normalised ``(x, y)``
            in [0, 1] (pixel centres at ``(i + 0.5) / W``).
        attention_weights: ``(B, Q, heads, L, P)``.

    Returns:
        ``(B, Q, C)``.
    """
    if value.is_cuda:
        return MultiScaleDeformableAttnFunction.apply(value, spatial_shapes, level_start_index,
                                                      sampling_locations, attention_weights,
                                                      im2col_step)
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations,
                                               attention_weights)


def init_sampling_offsets(linear: nn.Linear, num_heads: int, num_groups: int,
                          num_points: int) -> None:
    """Upstream's deformable-attention init: zero weight, bias on a ring of
    ``num_heads`` directions growing with the point index.

    ``linear.out_features`` must be ``num_heads * num_groups * num_points * 2``
    (``num_groups`` = levels, or queue x levels for TSA).
    """
    nn.init.constant_(linear.weight, 0.0)
    thetas = torch.arange(num_heads, dtype=torch.float32) * (2.0 * math.pi / num_heads)
    grid = torch.stack([thetas.cos(), thetas.sin()], -1)
    grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(num_heads, 1, 1, 2)
    grid = grid.repeat(1, num_groups, num_points, 1)
    for i in range(num_points):
        grid[:, :, i, :] *= i + 1
    with torch.no_grad():
        linear.bias.copy_(grid.view(-1))
