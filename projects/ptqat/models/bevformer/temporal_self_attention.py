"""``TemporalSelfAttention``: deformable attention of the BEV queries over [prev BEV, current BEV]."""
from typing import Optional

import torch
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .ms_deform_attn import init_sampling_offsets, ms_deform_attn


@MODELS.register_module()
class TemporalSelfAttention(BaseModule):
    """BEVFormer's temporal self-attention (keys as upstream).

    The offsets and weights are predicted from ``cat(prev_bev, query)``
    (``2 * embed_dims`` inputs); each of the ``num_bev_queue`` (=2) BEV
    maps is sampled around its own reference points, and the two results
    are averaged before ``output_proj``.

    Args:
        embed_dims (int): Channels C.
        num_heads (int): Heads.
        num_levels (int): BEV levels (1).
        num_points (int): Points per head, level and queue entry.
        num_bev_queue (int): Must be 2 (previous and current BEV).
        im2col_step (int): CUDA kernel batching.
        dropout (float): Dropout on the output before the residual.
        batch_first (bool): Tensors are ``(B, Q, C)`` if True.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 1,
                 num_points: int = 4, num_bev_queue: int = 2, im2col_step: int = 64,
                 dropout: float = 0.1, batch_first: bool = True, norm_cfg=None, init_cfg=None):
        super().__init__(init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'TemporalSelfAttention: embed_dims {embed_dims} must be divisible '
                             f'by num_heads {num_heads}')
        if num_bev_queue != 2:
            raise ValueError(f'TemporalSelfAttention: num_bev_queue {num_bev_queue} is not '
                             'supported (allowed: 2)')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.num_bev_queue, self.im2col_step = num_bev_queue, im2col_step
        self.batch_first = batch_first
        self.dropout = nn.Dropout(dropout)
        q = num_bev_queue
        self.sampling_offsets = nn.Linear(embed_dims * q, q * num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims * q, q * num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """Upstream initialisation (ring offsets, zero attention weights, xavier projections)."""
        init_sampling_offsets(self.sampling_offsets, self.num_heads,
                              self.num_levels * self.num_bev_queue, self.num_points)
        constant_init(self.attention_weights, val=0.0, bias=0.0)
        xavier_init(self.value_proj, distribution='uniform', bias=0.0)
        xavier_init(self.output_proj, distribution='uniform', bias=0.0)

    def forward(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None, query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None, **kwargs) -> Tensor:
        """One TSA step.

        Args:
            query: ``(B, HW, C)`` BEV queries (batch first).
            value: ``(2B, HW, C)``, per sample ``[prev_bev, query]``; None
                means ``[query, query]`` (no history).
            query_pos: ``(B, HW, C)`` BEV positional encoding.
            reference_points: ``(2B, HW, 1, 2)`` normalised ``(x, y)``, per
                sample ``[shifted ref, ref]``.
            spatial_shapes: ``[[bev_h, bev_w]]``; level_start_index ``[0]``.

        Returns:
            ``(B, HW, C)``: ``identity + dropout(output_proj(mean_queue(...)))``.
        """
        if not self.batch_first:
            query = query.permute(1, 0, 2)
            if identity is not None:
                identity = identity.permute(1, 0, 2)
            if query_pos is not None:
                query_pos = query_pos.permute(1, 0, 2)
            if value is not None:
                value = value.permute(1, 0, 2)
        bs, num_query, embed_dims = query.shape
        nq = self.num_bev_queue
        if value is None:
            value = torch.stack([query, query], 1).reshape(bs * nq, num_query, embed_dims)
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        num_value = value.shape[1]
        if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != num_value:
            raise ValueError(f'TemporalSelfAttention: spatial_shapes {spatial_shapes.tolist()} do '
                             f'not cover the {num_value} values')
        # upstream writes value[:bs], which is the history only for bs == 1
        prev = value.view(bs, nq, num_value, embed_dims)[:, 0]
        query = torch.cat([prev, query], -1)
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.reshape(bs * nq, num_value, self.num_heads, -1)
        h, L, P = self.num_heads, self.num_levels, self.num_points
        offsets = self.sampling_offsets(query).view(bs, num_query, h, nq, L, P, 2)
        weights = self.attention_weights(query).view(bs, num_query, h, nq, L * P).softmax(-1)
        weights = weights.view(bs, num_query, h, nq, L, P).permute(0, 3, 1, 2, 4, 5)
        weights = weights.reshape(bs * nq, num_query, h, L, P).contiguous()
        offsets = offsets.permute(0, 3, 1, 2, 4, 5, 6).reshape(bs * nq, num_query, h, L, P, 2)
        if reference_points.shape[-1] != 2:
            raise ValueError('TemporalSelfAttention: reference_points must end in 2 (x, y), got '
                             f'shape {tuple(reference_points.shape)}')
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
        locations = (reference_points[:, :, None, :, None, :] +
                     offsets / normalizer[None, None, None, :, None, :])
        out = ms_deform_attn(value, spatial_shapes, level_start_index, locations, weights,
                             self.im2col_step)  # (bs*nq, Q, C)
        out = out.view(bs, nq, num_query, embed_dims).mean(1)
        out = self.output_proj(out)
        out = self.dropout(out) + identity
        if not self.batch_first:
            out = out.permute(1, 0, 2)
        return out
