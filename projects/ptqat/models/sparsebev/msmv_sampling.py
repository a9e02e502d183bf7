"""Multi-scale, multi-view, multi-frame feature sampling of SparseBEV, in pure torch.

``msmv_sampling`` is upstream's ``msmv_sampling_pytorch`` semantics (the CUDA kernel's
``align_corners=True`` convention: normalised ``u`` in ``[0, 1]`` maps to pixel ``u·(W-1)``),
written with one 5-D ``grid_sample`` per level whose depth axis is the camera view.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .bbox_coding import decode_bbox

EPS = 1e-5


def rotate_z(points: Tensor, yaw: Tensor) -> Tensor:
    """Rotate ``(..., P, 3)`` points counter-clockwise about z by ``yaw (..., 1)`` radians."""
    c, s = yaw.cos().unsqueeze(-2), yaw.sin().unsqueeze(-2)  # (..., 1, 1)
    x, y = points[..., 0:1], points[..., 1:2]
    return torch.cat([x * c - y * s, x * s + y * c, points[..., 2:3]], dim=-1)


def make_sample_points(query_bbox: Tensor, offset: Tensor, pc_range: Sequence[float]) -> Tensor:
    """3-D sampling points of each query box.

    Args:
        query_bbox: ``(B, Q, 10)`` query codes (see :mod:`.bbox_coding`).
        offset: ``(B, Q, P, 3)`` offsets in units of the box size (x_size, y_size, z_size),
            in the box frame.
        pc_range: point-cloud range (metres).

    Returns:
        ``(B, Q, P, 3)`` points in the current LiDAR frame (metres).
    """
    box = decode_bbox(query_bbox, pc_range)
    delta = box[..., None, 3:6] * offset
    delta = rotate_z(delta, box[..., 6:7])
    return box[..., None, 0:3] + delta


def project_points(points: Tensor, lidar2img: Tensor, image_hw: Tuple[int, int]
                   ) -> Tuple[Tensor, Tensor]:
    """Project LiDAR-frame points into every camera of every frame.

    Args:
        points: ``(B, Q, T, K, 3)`` points (metres), already warped per frame.
        lidar2img: ``(B, T·N, 4, 4)`` current-LiDAR -> image matrices, frame-major.
        image_hw: ``(H, W)`` of the network input (pixels).

    Returns:
        ``uv (B, T, N, Q, K, 2)`` normalised image coordinates (``x/W, y/H``) and
        ``valid (B, T, N, Q, K)`` (in front of the camera and strictly inside the image).
    """
    B, Q, T, K, _ = points.shape
    N = lidar2img.shape[1] // T
    if N * T != lidar2img.shape[1]:
        raise ValueError(f'lidar2img has {lidar2img.shape[1]} matrices, not a multiple of '
                         f'{T} frames')
    mats = lidar2img.reshape(B, T, N, 4, 4)
    homo = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    cam = torch.einsum('btnij,bqtkj->btnqki', mats, homo)
    depth = cam[..., 2:3]
    uv = cam[..., 0:2] / depth.clamp_min(EPS)
    uv = uv / uv.new_tensor([image_hw[1], image_hw[0]])
    valid = ((depth > EPS) & (uv > 0.0).all(-1, keepdim=True)
             & (uv < 1.0).all(-1, keepdim=True)).squeeze(-1)
    return uv, valid


def msmv_sampling(mlvl_feats: List[Tensor], locations: Tensor, scale_weights: Tensor) -> Tensor:
    """Bilinear sampling of one view per point at every level, weighted over levels.

    Args:
        mlvl_feats: per level ``(M, C, N, H_l, W_l)`` (``M`` = batch·frames·groups,
            ``N`` views).
        locations: ``(M, Q, P, 3)`` = ``(x/W, y/H, view/(N-1))`` in ``[0, 1]``
            (``align_corners=True``: 0 and 1 are the centres of the first/last pixel).
        scale_weights: ``(M, Q, P, L)`` level weights.

    Returns:
        ``(M, Q, C, P)``; points outside the image sample zeros.
    """
    if scale_weights.shape[-1] != len(mlvl_feats):
        raise ValueError(f'scale_weights has {scale_weights.shape[-1]} levels, the features '
                         f'{len(mlvl_feats)}')
    M, Q, P, _ = locations.shape
    grid = (locations * 2 - 1)[:, :, :, None, :]  # (M, Q, P, 1, 3)
    out = None
    for lvl, feat in enumerate(mlvl_feats):
        s = F.grid_sample(feat, grid.to(feat.dtype), mode='bilinear', padding_mode='zeros',
                          align_corners=True)[..., 0]  # (M, C, Q, P)
        s = s * scale_weights[..., lvl].reshape(M, 1, Q, P)
        out = s if out is None else out + s
    return out.permute(0, 2, 1, 3)


def group_features(mlvl_feats: List[Tensor], num_frames: int, num_groups: int) -> List[Tensor]:
    """``(B, T·N, C, H, W)`` per level -> ``(B·T·G, C/G, N, H, W)`` for :func:`msmv_sampling`."""
    out = []
    for feat in mlvl_feats:
        B, TN, C, H, W = feat.shape
        T, G = num_frames, num_groups
        if TN % T or C % G:
            raise ValueError(f'feature shape {tuple(feat.shape)} does not split into {T} frames '
                             f'and {G} channel groups')
        N = TN // T
        f = feat.reshape(B, T, N, G, C // G, H, W).permute(0, 1, 3, 4, 2, 5, 6)
        out.append(f.reshape(B * T * G, C // G, N, H, W).contiguous())
    return out


def sampling_4d(points: Tensor, mlvl_feats: List[Tensor], scale_weights: Tensor,
                lidar2img: Tensor, image_hw: Tuple[int, int]) -> Tensor:
    """SparseBEV's spatio-temporal sampling.

    Args:
        points: ``(B, Q, T, G, P, 3)`` LiDAR-frame points per frame (metres).
        mlvl_feats: from :func:`group_features`, per level ``(B·T·G, C/G, N, H_l, W_l)``.
        scale_weights: ``(B, Q, G, T, P, L)`` softmax-normalised level weights.
        lidar2img: ``(B, T·N, 4, 4)``.
        image_hw: network input ``(H, W)``.

    Each point is sampled in the first view (lowest index) that sees it, view 0 if none
    does (as upstream; such points fall outside the image and sample zeros, or the image
    border).

    Returns:
        ``(B, Q, G, T·P, C/G)``.
    """
    B, Q, T, G, P, _ = points.shape
    uv, valid = project_points(points.reshape(B, Q, T, G * P, 3), lidar2img, image_hw)
    N = uv.shape[2]
    view = valid.float().permute(0, 1, 3, 4, 2).argmax(-1)  # (B, T, Q, GP), first valid view
    uv = uv.permute(0, 1, 3, 4, 2, 5)  # (B, T, Q, GP, N, 2)
    idx = view[..., None, None].expand(B, T, Q, G * P, 1, 2)
    uv = uv.gather(4, idx).squeeze(4)  # (B, T, Q, GP, 2)
    vz = view.to(uv.dtype)[..., None] / max(N - 1, 1)
    loc = torch.cat([uv, vz], dim=-1).reshape(B, T, Q, G, P, 3)
    loc = loc.permute(0, 1, 3, 2, 4, 5).reshape(B * T * G, Q, P, 3)
    # As upstream, the level weights are laid out (B, G, T) while the feature/point rows are
    # (B, T, G); kept so that the official weights behave as trained.
    L = scale_weights.shape[-1]
    sw = scale_weights.permute(0, 2, 3, 1, 4, 5).reshape(B * G * T, Q, P, L)
    out = msmv_sampling(mlvl_feats, loc, sw)  # (BTG, Q, C, P)
    C = out.shape[2]
    out = out.reshape(B, T, G, Q, C, P).permute(0, 3, 2, 1, 5, 4)  # (B, Q, G, T, P, C)
    return out.reshape(B, Q, G, T * P, C)
