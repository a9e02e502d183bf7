"""``SparseBEVSelfAttention``: scale-adaptive self-attention (SASA, SparseBEV §3.2)."""
from typing import Optional, Sequence

import torch
from mmcv.cnn.bricks.transformer import MultiheadAttention
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .bbox_coding import decode_bbox


@MODELS.register_module()
class SparseBEVSelfAttention(BaseModule):
    """Multi-head self-attention whose logits get ``-τ_h · ||c_i - c_j||`` added: a
    distance penalty between box centres (BEV, metres) with a per-query, per-head
    receptive-field scale ``τ = gen_tau(query)``.

    Args:
        embed_dims: C; num_heads: H; dropout: attention dropout.
        pc_range: point-cloud range (metres), to decode the centres.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, dropout: float = 0.1,
                 pc_range: Sequence[float] = (), init_cfg=None):
        super().__init__(init_cfg)
        self.pc_range = list(pc_range)
        self.num_heads = num_heads
        self.attention = MultiheadAttention(embed_dims, num_heads, dropout, batch_first=True)
        self.gen_tau = nn.Linear(embed_dims, num_heads)

    def init_weights(self) -> None:
        """Upstream: τ starts as a per-head constant in [0, 2]."""
        with torch.no_grad():
            nn.init.zeros_(self.gen_tau.weight)
            nn.init.uniform_(self.gen_tau.bias, 0.0, 2.0)

    @torch.no_grad()
    def center_distances(self, query_bbox: Tensor) -> Tensor:
        """``(B, Q, Q)`` BEV distances (metres) between the query box centres."""
        c = decode_bbox(query_bbox, self.pc_range)[..., :2]
        return torch.cdist(c, c)

    def attention_bias(self, query_bbox: Tensor, query_feat: Tensor,
                       pre_attn_mask: Optional[Tensor]) -> Tensor:
        """``(B·H, Q, Q)`` additive attention mask (``-inf`` where ``pre_attn_mask``)."""
        tau = self.gen_tau(query_feat).permute(0, 2, 1)  # (B, H, Q)
        bias = -self.center_distances(query_bbox)[:, None] * tau[..., None]  # (B, H, Q, Q)
        if pre_attn_mask is not None:  # query denoising groups
            bias = bias.masked_fill(pre_attn_mask, float('-inf'))
        return bias.flatten(0, 1)

    def forward(self, query_bbox: Tensor, query_feat: Tensor,
                pre_attn_mask: Optional[Tensor] = None) -> Tensor:
        """``(B, Q, 10)`` codes, ``(B, Q, C)`` features, optional ``(Q, Q)`` bool mask
        (True = blocked) -> ``(B, Q, C)`` (with the residual, as mmcv's attention)."""
        bias = self.attention_bias(query_bbox, query_feat, pre_attn_mask)
        return self.attention(query_feat, attn_mask=bias)
