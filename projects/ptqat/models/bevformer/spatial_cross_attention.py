"""``SpatialCrossAttention`` and ``MSDeformableAttention3D``: BEV queries attend to camera features."""
from typing import Optional

import torch
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .ms_deform_attn import init_sampling_offsets, ms_deform_attn


@MODELS.register_module()
class MSDeformableAttention3D(BaseModule):
    """Deformable attention around the projected pillar points (no output_proj).

    ``num_points`` per head and level are split into ``num_points / D``
    offsets around each of the ``D`` projected pillar heights.

    Args:
        embed_dims, num_heads, num_levels, num_points: As upstream (256, 8, 4, 8).
        im2col_step (int): CUDA kernel batching.
        batch_first (bool): Must be True (upstream's only use).
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4,
                 num_points: int = 8, im2col_step: int = 64, dropout: float = 0.1,
                 batch_first: bool = True, norm_cfg=None, init_cfg=None):
        super().__init__(init_cfg)
        if not batch_first:
            raise ValueError('MSDeformableAttention3D: batch_first=False is not supported '
                             '(allowed: True)')
        if embed_dims % num_heads != 0:
            raise ValueError(f'MSDeformableAttention3D: embed_dims {embed_dims} must be '
                             f'divisible by num_heads {num_heads}')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.im2col_step, self.batch_first = im2col_step, batch_first
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """Upstream initialisation."""
        init_sampling_offsets(self.sampling_offsets, self.num_heads, self.num_levels,
                              self.num_points)
        constant_init(self.attention_weights, val=0.0, bias=0.0)
        xavier_init(self.value_proj, distribution='uniform', bias=0.0)

    def forward(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None, query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None, **kwargs) -> Tensor:
        """``query (B', Q, C)``, ``value (B', sum HW, C)``, ``reference_points
        (B', Q, D, 2)`` normalised image ``(x, y)`` -> ``(B', Q, C)``."""
        if value is None:
            value = query
        if query_pos is not None:
            query = query + query_pos
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != num_value:
            raise ValueError(f'MSDeformableAttention3D: spatial_shapes {spatial_shapes.tolist()} '
                             f'do not cover the {num_value} values')
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        h, L, P = self.num_heads, self.num_levels, self.num_points
        offsets = self.sampling_offsets(query).view(bs, num_query, h, L, P, 2)
        weights = self.attention_weights(query).view(bs, num_query, h, L * P).softmax(-1)
        weights = weights.view(bs, num_query, h, L, P)
        if reference_points.shape[-1] != 2:
            raise ValueError('MSDeformableAttention3D: reference_points must end in 2 (x, y), '
                             f'got shape {tuple(reference_points.shape)}')
        D = reference_points.shape[2]
        if P % D != 0:
            raise ValueError(f'MSDeformableAttention3D: num_points {P} must be a multiple of the '
                             f'{D} pillar points')
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
        offsets = offsets / normalizer[None, None, None, :, None, :]
        offsets = offsets.view(bs, num_query, h, L, P // D, D, 2)
        locations = reference_points[:, :, None, None, None, :, :] + offsets
        locations = locations.view(bs, num_query, h, L, P, 2)
        return ms_deform_attn(value, spatial_shapes, level_start_index, locations, weights,
                              self.im2col_step)


@MODELS.register_module()
class SpatialCrossAttention(BaseModule):
    """Per camera, the BEV queries whose pillar hits it attend to its features.

    Outputs are summed over cameras, divided by the number of hit cameras
    (at least 1), projected by ``output_proj`` and added to the residual.

    Args:
        embed_dims (int): Channels C.
        num_cams (int): Cameras N.
        pc_range: Unused here (config compatibility).
        dropout (float): Dropout before the residual.
        deformable_attention (dict): ``MSDeformableAttention3D`` config.
    """

    def __init__(self, embed_dims: int = 256, num_cams: int = 6, pc_range=None,
                 dropout: float = 0.1, init_cfg=None, batch_first: bool = False,
                 deformable_attention: Optional[dict] = None, **kwargs):
        super().__init__(init_cfg)
        if kwargs:
            raise TypeError(f'SpatialCrossAttention: unexpected arguments {sorted(kwargs)}')
        self.embed_dims, self.num_cams, self.pc_range = embed_dims, num_cams, pc_range
        self.dropout = nn.Dropout(dropout)
        cfg = dict(type='MSDeformableAttention3D', embed_dims=embed_dims, num_levels=4)
        cfg.update(deformable_attention or {})
        self.deformable_attention = MODELS.build(cfg)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.batch_first = batch_first
        xavier_init(self.output_proj, distribution='uniform', bias=0.0)

    def init_weights(self) -> None:
        xavier_init(self.output_proj, distribution='uniform', bias=0.0)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, residual: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None, key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                reference_points_cam: Optional[Tensor] = None,
                bev_mask: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None, **kwargs) -> Tensor:
        """One SCA step.

        Args:
            query: ``(B, HW, C)`` BEV queries.
            key, value: ``(N, sum_l H_l*W_l, B, C)`` flattened camera features.
            reference_points_cam: ``(N, B, HW, D, 2)`` normalised image ``(x, y)``.
            bev_mask: ``(N, B, HW, D)`` bool, pillar point visible in the camera.

        Returns:
            ``(B, HW, C)``.
        """
        inp_residual = query if residual is None else residual
        if query_pos is not None:
            query = query + query_pos
        bs, num_query, C = query.shape
        num_cams, num_value, _, _ = value.shape
        D = reference_points_cam.size(3)
        hit = bev_mask.any(-1)  # (N, B, HW)
        # queries hit by camera i in any sample of the batch (upstream: sample 0)
        indexes = [hit[i].any(0).nonzero().squeeze(-1) for i in range(num_cams)]
        max_len = max(1, max(len(ix) for ix in indexes))
        queries_rebatch = query.new_zeros([bs, num_cams, max_len, C])
        refs_rebatch = reference_points_cam.new_zeros([bs, num_cams, max_len, D, 2])
        for i, ix in enumerate(indexes):
            queries_rebatch[:, i, :len(ix)] = query[:, ix]
            refs_rebatch[:, i, :len(ix)] = reference_points_cam[i][:, ix]
        value = value.permute(2, 0, 1, 3).reshape(bs * num_cams, num_value, C)
        out = self.deformable_attention(
            query=queries_rebatch.view(bs * num_cams, max_len, C), value=value,
            reference_points=refs_rebatch.view(bs * num_cams, max_len, D, 2),
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index).view(bs, num_cams, max_len, C)
        slots = torch.zeros_like(query)
        for i, ix in enumerate(indexes):
            slots = slots.index_add(1, ix, out[:, i, :len(ix)])
        count = hit.permute(1, 2, 0).sum(-1).clamp(min=1.0)  # (B, HW)
        slots = slots / count[..., None]
        return self.dropout(self.output_proj(slots)) + inp_residual
