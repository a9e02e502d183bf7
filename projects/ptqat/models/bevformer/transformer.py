"""``PerceptionTransformer``: BEV encoder (with temporal alignment) + detection decoder."""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn.bricks.transformer import build_transformer_layer_sequence
from mmengine.model import BaseModule, xavier_init
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..detr3d.rotate import rotate


def bev_shift(can_bus: Tensor, bev_h: int, bev_w: int,
              grid_length: Tuple[float, float]) -> Tensor:
    """Shift of the previous BEV in normalised BEV coordinates.

    Args:
        can_bus: ``(B, 18)`` with the ego translation delta ``[0:2]`` (metres,
            global frame) and the ego yaw ``[-2]`` (radians).
        grid_length: ``(cell_y, cell_x)`` metres per BEV cell.

    Returns:
        ``(B, 2)`` ``(shift_x, shift_y)``, fractions of the BEV width/height.
    """
    dx, dy = can_bus[:, 0].double(), can_bus[:, 1].double()
    ego_angle = can_bus[:, -2].double() / math.pi * 180
    length = torch.sqrt(dx**2 + dy**2)
    trans_angle = torch.atan2(dy, dx) / math.pi * 180
    bev_angle = ego_angle - trans_angle
    shift_y = length * torch.cos(bev_angle / 180 * math.pi) / grid_length[0] / bev_h
    shift_x = length * torch.sin(bev_angle / 180 * math.pi) / grid_length[1] / bev_w
    return torch.stack([shift_x, shift_y], -1).to(can_bus.dtype)


def rotate_prev_bev(prev_bev: Tensor, angles_deg: Sequence[float], bev_h: int, bev_w: int,
                    center: Sequence[float]) -> Tensor:
    """Rotate each sample's previous BEV by its yaw delta (nearest, zero fill).

    Args:
        prev_bev: ``(HW, B, C)``.
        angles_deg: B angles in degrees (counter-clockwise as displayed).
        center: Rotation centre ``(x, y)`` in BEV cells.

    Returns:
        ``(HW, B, C)`` (a new tensor).
    """
    out = []
    for i, angle in enumerate(angles_deg):
        x = prev_bev[:, i].reshape(bev_h, bev_w, -1).permute(2, 0, 1)
        x = rotate(x, float(angle), center=center)
        out.append(x.permute(1, 2, 0).reshape(bev_h * bev_w, -1))
    return torch.stack(out, 1)


@MODELS.register_module()
class PerceptionTransformer(BaseModule):
    """BEVFormer's transformer (keys as upstream).

    Args:
        encoder (dict): ``BEVFormerEncoder`` config.
        decoder (dict, optional): ``DetectionTransformerDecoder`` config; None: BEV encoder
            only (no ``decoder`` / ``reference_points``: the dense-task models).
        embed_dims (int): Channels C.
        num_feature_levels (int): FPN levels L (``level_embeds (L, C)``).
        num_cams (int): Cameras N (``cams_embeds (N, C)``).
        rotate_prev_bev, use_shift, use_can_bus, can_bus_norm, use_cams_embeds:
            Upstream switches.
        rotate_center (sequence[float]): In BEV cells; upstream keeps
            ``[100, 100]`` for every BEV size.
    """

    def __init__(self, encoder: dict, decoder: Optional[dict], embed_dims: int = 256,
                 num_feature_levels: int = 4, num_cams: int = 6, two_stage_num_proposals=300,
                 rotate_prev_bev: bool = True, use_shift: bool = True, use_can_bus: bool = True,
                 can_bus_norm: bool = True, use_cams_embeds: bool = True,
                 rotate_center: Sequence[float] = (100, 100), init_cfg=None):
        super().__init__(init_cfg)
        self.encoder = build_transformer_layer_sequence(encoder)
        self.decoder = build_transformer_layer_sequence(decoder) if decoder is not None else None
        self.embed_dims = embed_dims
        self.num_feature_levels, self.num_cams = num_feature_levels, num_cams
        self.rotate_prev_bev, self.use_shift = rotate_prev_bev, use_shift
        self.use_can_bus, self.can_bus_norm = use_can_bus, can_bus_norm
        self.use_cams_embeds = use_cams_embeds
        self.rotate_center = list(rotate_center)
        self.level_embeds = nn.Parameter(torch.empty(num_feature_levels, embed_dims))
        self.cams_embeds = nn.Parameter(torch.empty(num_cams, embed_dims))
        if self.decoder is not None:
            self.reference_points = nn.Linear(embed_dims, 3)
        self.can_bus_mlp = nn.Sequential(
            nn.Linear(18, embed_dims // 2), nn.ReLU(inplace=True),
            nn.Linear(embed_dims // 2, embed_dims), nn.ReLU(inplace=True))
        if can_bus_norm:
            self.can_bus_mlp.add_module('norm', nn.LayerNorm(embed_dims))
        self.init_weights()

    def init_weights(self) -> None:
        """Upstream initialisation."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if m is not self and hasattr(m, 'init_weights') and hasattr(m, 'sampling_offsets'):
                m.init_weights()
        nn.init.normal_(self.level_embeds)
        nn.init.normal_(self.cams_embeds)
        if self.decoder is not None:
            xavier_init(self.reference_points, distribution='uniform', bias=0.0)
        xavier_init(self.can_bus_mlp, distribution='uniform', bias=0.0)

    def get_bev_features(self, mlvl_feats: List[Tensor], bev_queries: Tensor, bev_h: int,
                         bev_w: int, grid_length: Tuple[float, float], bev_pos: Tensor,
                         img_metas: List[dict], prev_bev: Optional[Tensor] = None) -> Tensor:
        """Encode the current BEV.

        Args:
            mlvl_feats: per level ``(B, N, C, H_l, W_l)``.
            bev_queries: ``(HW, C)``; bev_pos ``(B, C, H, W)``.
            img_metas: per sample ``can_bus`` (18, deltas already applied:
                ``[0:3]`` translation delta, ``[-1]`` yaw delta in degrees,
                ``[-2]`` yaw in radians), ``lidar2img``, ``img_shape``.
            prev_bev: ``(B, HW, C)`` or ``(HW, B, C)``, or None.

        Returns:
            ``(B, HW, C)``.
        """
        bs = mlvl_feats[0].size(0)
        bev_queries = bev_queries.unsqueeze(1).repeat(1, bs, 1)
        bev_pos = bev_pos.flatten(2).permute(2, 0, 1)
        can_bus = bev_queries.new_tensor([list(m['can_bus']) for m in img_metas])
        shift = bev_shift(can_bus, bev_h, bev_w, grid_length) * float(self.use_shift)
        if prev_bev is not None:
            if prev_bev.shape[1] == bev_h * bev_w:
                prev_bev = prev_bev.permute(1, 0, 2)
            if self.rotate_prev_bev:
                angles = [float(m['can_bus'][-1]) for m in img_metas]
                prev_bev = rotate_prev_bev(prev_bev, angles, bev_h, bev_w, self.rotate_center)
        bev_queries = bev_queries + self.can_bus_mlp(can_bus)[None] * float(self.use_can_bus)
        feats, shapes = [], []
        for lvl, feat in enumerate(mlvl_feats):
            _, num_cam, c, h, w = feat.shape
            feat = feat.flatten(3).permute(1, 0, 3, 2)  # (N, B, hw, C)
            if self.use_cams_embeds:
                feat = feat + self.cams_embeds[:num_cam, None, None, :].to(feat.dtype)
            feat = feat + self.level_embeds[None, None, lvl:lvl + 1, :].to(feat.dtype)
            feats.append(feat)
            shapes.append((h, w))
        feat_flatten = torch.cat(feats, 2).permute(0, 2, 1, 3)  # (N, sum hw, B, C)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=bev_pos.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros((1,)),
                                       spatial_shapes.prod(1).cumsum(0)[:-1]))
        return self.encoder(bev_queries, feat_flatten, feat_flatten, bev_h=bev_h, bev_w=bev_w,
                            bev_pos=bev_pos, spatial_shapes=spatial_shapes,
                            level_start_index=level_start_index, prev_bev=prev_bev, shift=shift,
                            img_metas=img_metas)

    def forward(self, mlvl_feats: List[Tensor], bev_queries: Tensor, object_query_embed: Tensor,
                bev_h: int, bev_w: int, grid_length: Tuple[float, float], bev_pos: Tensor,
                img_metas: List[dict], reg_branches: Optional[nn.ModuleList] = None,
                prev_bev: Optional[Tensor] = None, **kwargs):
        """BEV encoding then decoding of ``object_query_embed (Q, 2C)`` (pos, query).

        Returns:
            ``bev_embed (B, HW, C)``, states ``(L, Q, B, C)``, initial
            reference points ``(B, Q, 3)``, refined ones ``(L, B, Q, 3)``.
        """
        if self.decoder is None:
            raise ValueError('PerceptionTransformer without a decoder encodes the BEV only: '
                             'call get_bev_features')
        bev_embed = self.get_bev_features(mlvl_feats, bev_queries, bev_h, bev_w, grid_length,
                                          bev_pos, img_metas, prev_bev)
        bs = mlvl_feats[0].size(0)
        query_pos, query = torch.split(object_query_embed, self.embed_dims, dim=1)
        query_pos = query_pos.unsqueeze(0).expand(bs, -1, -1)
        query = query.unsqueeze(0).expand(bs, -1, -1)
        init_reference = self.reference_points(query_pos).sigmoid()
        states, refs = self.decoder(
            query=query.permute(1, 0, 2), key=None, value=bev_embed.permute(1, 0, 2),
            query_pos=query_pos.permute(1, 0, 2), reference_points=init_reference,
            reg_branches=reg_branches,
            spatial_shapes=torch.tensor([[bev_h, bev_w]], device=query.device),
            level_start_index=torch.tensor([0], device=query.device))
        return bev_embed, states, init_reference, refs
