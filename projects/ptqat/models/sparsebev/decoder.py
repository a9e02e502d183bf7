"""SparseBEV decoder: ONE ``SparseBEVTransformerDecoderLayer`` run ``num_layers`` times."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers.transformer import inverse_sigmoid
from mmengine.model import BaseModule, bias_init_with_prob
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .adaptive_mixing import AdaptiveMixing
from .msmv_sampling import group_features
from .sparsebev_sampling import SparseBEVSampling
from .sparsebev_self_attention import SparseBEVSelfAttention


def _mlp(dims: int, n: int, norm: bool, out: int) -> nn.Sequential:
    layers: List[nn.Module] = []
    for _ in range(n):
        layers.append(nn.Linear(dims, dims))
        if norm:
            layers.append(nn.LayerNorm(dims))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Linear(dims, out))
    return nn.Sequential(*layers)


@MODELS.register_module()
class SparseBEVTransformerDecoderLayer(BaseModule):
    """Position encoding -> SASA -> adaptive sampling -> adaptive mixing -> FFN ->
    class and box branches, then the box refinement.

    Args:
        embed_dims: C; num_frames: T; num_points: P per group and frame; num_levels: L;
        num_classes, code_size: outputs; pc_range: metres; num_groups: G (4 upstream).
    """

    def __init__(self, embed_dims: int = 256, num_frames: int = 8, num_points: int = 4,
                 num_levels: int = 4, num_classes: int = 10, code_size: int = 10,
                 num_cls_fcs: int = 2, num_reg_fcs: int = 2, pc_range: Sequence[float] = (),
                 num_groups: int = 4, num_heads: int = 8, ffn_channels: int = 512,
                 out_points: int = 128, init_cfg=None):
        super().__init__(init_cfg)
        self.embed_dims, self.num_classes, self.code_size = embed_dims, num_classes, code_size
        self.pc_range = list(pc_range)
        self.num_groups = num_groups
        self.position_encoder = nn.Sequential(
            nn.Linear(3, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(inplace=True),
            nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(inplace=True))
        self.self_attn = SparseBEVSelfAttention(embed_dims, num_heads, 0.1, pc_range)
        self.sampling = SparseBEVSampling(embed_dims, num_frames, num_groups, num_points,
                                          num_levels, pc_range)
        self.mixing = AdaptiveMixing(embed_dims, num_points * num_frames, num_groups,
                                     out_points=out_points)
        self.ffn = FFN(embed_dims, feedforward_channels=ffn_channels, ffn_drop=0.1)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.cls_branch = _mlp(embed_dims, num_cls_fcs, True, num_classes)
        self.reg_branch = _mlp(embed_dims, num_reg_fcs, False, code_size)

    def init_weights(self) -> None:
        self.self_attn.init_weights()
        self.sampling.init_weights()
        self.mixing.init_weights()
        with torch.no_grad():
            nn.init.constant_(self.cls_branch[-1].bias, bias_init_with_prob(0.01))

    @staticmethod
    def refine_bbox(query_bbox: Tensor, delta: Tensor) -> Tensor:
        """xyz: ``sigmoid(Δ + logit(prev))`` (normalised); the other entries are ``Δ``."""
        xyz = (delta[..., 0:3] + inverse_sigmoid(query_bbox[..., 0:3])).sigmoid()
        return torch.cat([xyz, delta[..., 3:]], dim=-1)

    def forward(self, query_bbox: Tensor, query_feat: Tensor, mlvl_feats: List[Tensor],
                attn_mask: Optional[Tensor], lidar2img: Tensor, time_diff: Tensor,
                image_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
        """One stage: ``(B, Q, 10)`` codes and ``(B, Q, C)`` features -> new features,
        ``(B, Q, K)`` class logits and ``(B, Q, 10)`` refined codes (velocity in m/s)."""
        query_feat = query_feat + self.position_encoder(query_bbox[..., :3])
        query_feat = self.norm1(self.self_attn(query_bbox, query_feat, attn_mask))
        sampled = self.sampling(query_bbox, query_feat, mlvl_feats, lidar2img, time_diff,
                                image_hw)
        query_feat = self.norm2(self.mixing(sampled, query_feat))
        query_feat = self.norm3(self.ffn(query_feat))
        cls_score = self.cls_branch(query_feat)
        bbox = self.refine_bbox(query_bbox, self.reg_branch(query_feat))
        if time_diff.shape[1] > 1:  # displacement per frame interval -> m/s
            dt = time_diff[:, 1:2].clone()
            dt[dt < 1e-5] = 1.0
            bbox = torch.cat([bbox[..., :8], bbox[..., 8:] / dt[:, None]], dim=-1)
        return query_feat, cls_score, bbox


@MODELS.register_module()
class SparseBEVTransformerDecoder(BaseModule):
    """``num_layers`` stages sharing ``decoder_layer``'s weights; the box is detached
    between stages.

    Quantization: ``quantize_model`` replaces the layers inside ``decoder_layer`` once, so
    every stage uses the same quantizers (see ``ptqat.models.sparsebev`` docs).
    """

    def __init__(self, embed_dims: int = 256, num_frames: int = 8, num_points: int = 4,
                 num_layers: int = 6, num_levels: int = 4, num_classes: int = 10,
                 code_size: int = 10, pc_range: Sequence[float] = (), num_groups: int = 4,
                 layer_cfg: Optional[dict] = None, init_cfg=None):
        super().__init__(init_cfg)
        self.num_layers, self.num_frames, self.num_groups = num_layers, num_frames, num_groups
        self.decoder_layer = SparseBEVTransformerDecoderLayer(
            embed_dims, num_frames, num_points, num_levels, num_classes, code_size,
            pc_range=pc_range, num_groups=num_groups, **(layer_cfg or {}))

    def init_weights(self) -> None:
        self.decoder_layer.init_weights()

    def forward(self, query_bbox: Tensor, query_feat: Tensor, mlvl_feats: List[Tensor],
                attn_mask: Optional[Tensor], lidar2img: Tensor, time_diff: Tensor,
                image_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """``mlvl_feats`` per level ``(B, T·N, C, H, W)`` -> ``(S, B, Q, K)`` logits and
        ``(S, B, Q, 10)`` codes of the S stages."""
        feats = group_features(mlvl_feats, self.num_frames, self.num_groups)
        cls_scores, bbox_preds = [], []
        for _ in range(self.num_layers):
            query_feat, cls, bbox = self.decoder_layer(query_bbox, query_feat, feats, attn_mask,
                                                       lidar2img, time_diff, image_hw)
            query_bbox = bbox.detach()
            cls_scores.append(cls)
            bbox_preds.append(bbox)
        return torch.stack(cls_scores), torch.stack(bbox_preds)
