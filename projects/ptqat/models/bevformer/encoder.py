"""``BEVFormerEncoder`` (reference points, camera projection) and ``BEVFormerLayer``."""
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmcv.cnn.bricks.transformer import BaseTransformerLayer, TransformerLayerSequence
from torch import Tensor

from mmdet3d.registry import MODELS


def reference_points_3d(bev_h: int, bev_w: int, z_size: float, num_points_in_pillar: int,
                        bs: int, device=None, dtype=torch.float32) -> Tensor:
    """Pillar points of every BEV cell, normalised to [0, 1].

    Returns ``(bs, D, H*W, 3)`` with ``(x, y, z)``: cell centres
    ``(i + 0.5) / W`` and ``D`` heights evenly spaced in ``[0.5, Z - 0.5] / Z``.
    """
    D, Z = num_points_in_pillar, z_size
    zs = torch.linspace(0.5, Z - 0.5, D, dtype=dtype, device=device).view(-1, 1, 1).expand(
        D, bev_h, bev_w) / Z
    xs = torch.linspace(0.5, bev_w - 0.5, bev_w, dtype=dtype, device=device).view(
        1, 1, bev_w).expand(D, bev_h, bev_w) / bev_w
    ys = torch.linspace(0.5, bev_h - 0.5, bev_h, dtype=dtype, device=device).view(
        1, bev_h, 1).expand(D, bev_h, bev_w) / bev_h
    ref = torch.stack((xs, ys, zs), -1).flatten(1, 2)  # (D, HW, 3)
    return ref[None].repeat(bs, 1, 1, 1)


def reference_points_2d(bev_h: int, bev_w: int, bs: int, device=None,
                        dtype=torch.float32) -> Tensor:
    """BEV cell centres, normalised: ``(bs, H*W, 1, 2)`` with ``(x, y)``."""
    ref_y, ref_x = torch.meshgrid(
        torch.linspace(0.5, bev_h - 0.5, bev_h, dtype=dtype, device=device),
        torch.linspace(0.5, bev_w - 0.5, bev_w, dtype=dtype, device=device), indexing='ij')
    ref = torch.stack((ref_x.reshape(-1) / bev_w, ref_y.reshape(-1) / bev_h), -1)
    return ref[None].repeat(bs, 1, 1).unsqueeze(2)


def point_sampling(ref_3d: Tensor, pc_range: Sequence[float], lidar2img: Tensor,
                   img_shape: Sequence[int]) -> tuple:
    """Project the pillar points into every camera.

    Args:
        ref_3d: ``(B, D, HW, 3)`` normalised pillar points.
        pc_range: ``(x0, y0, z0, x1, y1, z1)`` metres.
        lidar2img: ``(B, N, 4, 4)`` LiDAR-to-image matrices (pixels of the
            input image).
        img_shape: ``(H, W)`` of the (padded) network input, pixels.

    Returns:
        ``reference_points_cam (N, B, HW, D, 2)`` normalised image ``(x, y)``
        and ``bev_mask (N, B, HW, D)`` (in front of the camera, inside the image).
    """
    pts = ref_3d.clone().float()
    for i in range(3):
        pts[..., i] = pts[..., i] * (pc_range[i + 3] - pc_range[i]) + pc_range[i]
    pts = torch.cat((pts, torch.ones_like(pts[..., :1])), -1)  # (B, D, HW, 4)
    cam = torch.einsum('bnij,bdqj->dbnqi', lidar2img.float(), pts)  # (D, B, N, HW, 4)
    eps = 1e-5
    mask = cam[..., 2:3] > eps
    xy = cam[..., 0:2] / torch.maximum(cam[..., 2:3], torch.ones_like(cam[..., 2:3]) * eps)
    xy = xy / xy.new_tensor([float(img_shape[1]), float(img_shape[0])])
    mask = (mask & (xy[..., 1:2] > 0.0) & (xy[..., 1:2] < 1.0) & (xy[..., 0:1] < 1.0) &
            (xy[..., 0:1] > 0.0))
    return xy.permute(2, 1, 3, 0, 4), mask.permute(2, 1, 3, 0, 4).squeeze(-1)


def stack_lidar2img(img_metas: List[dict], device) -> Tensor:
    """``(B, N, 4, 4)`` float32 from the metas' ``lidar2img`` (list/array per camera)."""
    mats = [np.asarray(m['lidar2img'], dtype=np.float64) for m in img_metas]
    return torch.as_tensor(np.stack(mats), dtype=torch.float32, device=device)


def padded_img_shape(img_metas: List[dict]) -> tuple:
    """The network input ``(H, W)`` every camera of the batch was padded to."""
    shapes = set()
    for m in img_metas:
        s = m.get('pad_shape', m.get('img_shape'))
        if s is None:
            raise KeyError("BEVFormer needs 'pad_shape' or 'img_shape' in the image metas")
        if isinstance(s[0], (list, tuple)):  # one per camera
            shapes.update(tuple(int(v) for v in x[:2]) for x in s)
        else:
            shapes.add(tuple(int(v) for v in s[:2]))
    if len(shapes) != 1:
        raise ValueError(f'BEVFormer: all cameras must share one input shape, got {shapes}')
    return shapes.pop()


@MODELS.register_module()
class BEVFormerLayer(BaseTransformerLayer):
    """Encoder layer: (self_attn=TSA, norm, cross_attn=SCA, norm, ffn, norm), batch first."""

    def __init__(self, attn_cfgs, feedforward_channels: int = 512, ffn_dropout: float = 0.1,
                 operation_order=None, act_cfg=dict(type='ReLU', inplace=True),
                 norm_cfg=dict(type='LN'), ffn_num_fcs: int = 2, ffn_cfgs=None,
                 batch_first: bool = True, **kwargs):
        if ffn_cfgs is None:
            ffn_cfgs = dict(type='FFN', embed_dims=attn_cfgs[0]['embed_dims'],
                            feedforward_channels=feedforward_channels, num_fcs=ffn_num_fcs,
                            ffn_drop=ffn_dropout, act_cfg=act_cfg)
        super().__init__(attn_cfgs=attn_cfgs, ffn_cfgs=ffn_cfgs, operation_order=operation_order,
                         norm_cfg=norm_cfg, batch_first=batch_first, **kwargs)
        allowed = {'self_attn', 'norm', 'cross_attn', 'ffn'}
        if not set(self.operation_order) <= allowed:
            raise ValueError(f'BEVFormerLayer: operation_order {self.operation_order} (allowed '
                             f'entries: {sorted(allowed)})')

    def forward(self, query: Tensor, key: Tensor = None, value: Tensor = None,
                bev_pos: Tensor = None, ref_2d: Tensor = None, ref_3d: Tensor = None,
                bev_h: int = None, bev_w: int = None, reference_points_cam: Tensor = None,
                spatial_shapes: Tensor = None, level_start_index: Tensor = None,
                prev_bev: Optional[Tensor] = None, bev_mask: Tensor = None,
                **kwargs) -> Tensor:
        """``query (B, HW, C)`` -> ``(B, HW, C)``; see :class:`BEVFormerEncoder` for the rest."""
        norm_i = attn_i = ffn_i = 0
        identity = query
        bev_shape = torch.tensor([[bev_h, bev_w]], device=query.device)
        bev_start = torch.tensor([0], device=query.device)
        for layer in self.operation_order:
            if layer == 'self_attn':
                query = self.attentions[attn_i](
                    query, prev_bev, prev_bev, identity if self.pre_norm else None,
                    query_pos=bev_pos, reference_points=ref_2d, spatial_shapes=bev_shape,
                    level_start_index=bev_start)
                attn_i += 1
                identity = query
            elif layer == 'norm':
                query = self.norms[norm_i](query)
                norm_i += 1
            elif layer == 'cross_attn':
                query = self.attentions[attn_i](
                    query, key, value, identity if self.pre_norm else None,
                    reference_points=ref_3d, reference_points_cam=reference_points_cam,
                    bev_mask=bev_mask, spatial_shapes=spatial_shapes,
                    level_start_index=level_start_index)
                attn_i += 1
                identity = query
            else:
                query = self.ffns[ffn_i](query, identity if self.pre_norm else None)
                ffn_i += 1
        return query


@MODELS.register_module()
class BEVFormerEncoder(TransformerLayerSequence):
    """Stack of :class:`BEVFormerLayer` s over the BEV queries.

    Args:
        transformerlayers (dict): Layer config.
        num_layers (int): Layers.
        pc_range (sequence[float]): ``(x0, y0, z0, x1, y1, z1)`` metres.
        num_points_in_pillar (int): D heights per BEV cell.
        return_intermediate (bool): Must be False (as upstream).
        shift_both_refs (bool): Reproduce BEVFormer v1.0/v2.0 (the released
            checkpoints): ``shift_ref_2d = ref_2d`` aliases the two tensors,
            so the in-place shift moves the reference points of the current
            BEV too. False (default) shifts only the previous BEV's (master).
    """

    def __init__(self, *args, pc_range=None, num_points_in_pillar: int = 4,
                 return_intermediate: bool = False, shift_both_refs: bool = False,
                 dataset_type=None, **kwargs):
        super().__init__(*args, **kwargs)
        if return_intermediate:
            raise ValueError('BEVFormerEncoder: return_intermediate=True is not supported '
                             '(allowed: False)')
        self.pc_range = list(pc_range)
        self.num_points_in_pillar = num_points_in_pillar
        self.shift_both_refs = shift_both_refs

    def forward(self, bev_query: Tensor, key: Tensor, value: Tensor, *args, bev_h: int,
                bev_w: int, bev_pos: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                img_metas: List[dict], prev_bev: Optional[Tensor] = None,
                shift: Optional[Tensor] = None, **kwargs) -> Tensor:
        """Encode the BEV queries.

        Args:
            bev_query: ``(HW, B, C)``; bev_pos ``(HW, B, C)``.
            key, value: ``(N, sum HW_l, B, C)`` camera features.
            prev_bev: ``(HW, B, C)`` aligned previous BEV, or None.
            shift: ``(B, 2)`` shift of the previous BEV in normalised ``(x, y)``.
            img_metas: per sample ``lidar2img (N, 4, 4)`` and ``img_shape``/``pad_shape``.

        Returns:
            ``(B, HW, C)``.
        """
        bs = bev_query.size(1)
        dev, dt = bev_query.device, bev_query.dtype
        z_size = self.pc_range[5] - self.pc_range[2]
        ref_3d = reference_points_3d(bev_h, bev_w, z_size, self.num_points_in_pillar, bs, dev, dt)
        ref_2d = reference_points_2d(bev_h, bev_w, bs, dev, dt)
        ref_cam, bev_mask = point_sampling(ref_3d, self.pc_range, stack_lidar2img(img_metas, dev),
                                           padded_img_shape(img_metas))
        if shift is None:
            shift = ref_2d.new_zeros(bs, 2)
        shift_ref_2d = ref_2d + shift[:, None, None, :]
        cur_ref_2d = shift_ref_2d if self.shift_both_refs else ref_2d
        bev_query = bev_query.permute(1, 0, 2)
        bev_pos = bev_pos.permute(1, 0, 2)
        _, len_bev, num_lvl, _ = ref_2d.shape
        if prev_bev is not None:
            prev_bev = prev_bev.permute(1, 0, 2)
            prev_bev = torch.stack([prev_bev, bev_query], 1).reshape(bs * 2, len_bev, -1)
            hybrid_ref_2d = torch.stack([shift_ref_2d, cur_ref_2d], 1)
        else:
            hybrid_ref_2d = torch.stack([cur_ref_2d, cur_ref_2d], 1)
        hybrid_ref_2d = hybrid_ref_2d.reshape(bs * 2, len_bev, num_lvl, 2)
        output = bev_query
        for layer in self.layers:
            output = layer(bev_query, key, value, bev_pos=bev_pos, ref_2d=hybrid_ref_2d,
                           ref_3d=ref_3d, bev_h=bev_h, bev_w=bev_w,
                           spatial_shapes=spatial_shapes, level_start_index=level_start_index,
                           reference_points_cam=ref_cam, bev_mask=bev_mask, prev_bev=prev_bev)
            bev_query = output
        return output
