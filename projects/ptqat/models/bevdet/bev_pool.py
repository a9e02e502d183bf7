"""Pure-PyTorch BEV pooling (the computation of BEVDet's ``bev_pool_v2``).

The official BEVDet splats the lifted frustum features into the BEV grid with a
CUDA kernel (``bev_pool_v2``).  This module computes the same sum with
``Tensor.index_add_`` so that it runs on any device, can be traced, and gets
its backward pass from autograd (no custom ``autograd.Function``).

Two functions:

* :func:`voxel_pooling_prepare` - the voxel rank computation of the official
  ``voxel_pooling_prepare_v2``: for every frustum point, the flat index of its
  depth probability (``ranks_depth``), of its image feature (``ranks_feat``)
  and of its BEV cell (``ranks_bev``).  Points outside the grid are dropped.
* :func:`bev_pool` - the pooling itself::

      out[r, c] = sum_i depth.flat[ranks_depth[i]]
                        * feat.flat[ranks_feat[i], c]
                  over all kept points i with ranks_bev[i] == r

  returned as a ``(B, C, Z, Y, X)`` tensor, like ``bev_pool_v2``.

Unlike the CUDA op the points need not be sorted by ``ranks_bev`` and no
interval bookkeeping is needed.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['voxel_pooling_prepare', 'bev_pool']


def voxel_pooling_prepare(coor: Tensor, grid_lower_bound: Tensor,
                          grid_interval: Tensor,
                          grid_size: Sequence[int]) -> Tuple[Tensor, ...]:
    """Compute the voxel ranks of frustum points (``bev_pool_v2`` layout).

    Args:
        coor (Tensor): Frustum points in the BEV frame, shape
            ``(B, N, D, H, W, 3)`` with (x, y, z) in metres.
        grid_lower_bound (Tensor): ``(3,)`` lower edge of the grid (x, y, z).
        grid_interval (Tensor): ``(3,)`` cell size (x, y, z).
        grid_size (sequence of int): ``(X, Y, Z)`` number of cells.

    Returns:
        tuple: ``ranks_bev``, ``ranks_depth``, ``ranks_feat``, each a ``(P,)``
        int64 tensor over the ``P`` kept points:

        * ``ranks_depth`` indexes the flattened depth ``(B, N, D, H, W)``;
        * ``ranks_feat`` indexes the flattened feature pixels ``(B, N, H, W)``;
        * ``ranks_bev = b*Z*Y*X + z*Y*X + y*X + x`` indexes the flattened
          output grid ``(B, Z, Y, X)``.

    Note:
        As in the official implementation the cell index is
        ``((coor - lower) / interval).long()``, i.e. truncated **towards
        zero**: a point less than one cell below the lower bound lands in
        cell 0.  Points with an index outside ``[0, size)`` on any axis are
        dropped.  No sorting is done (:func:`bev_pool` does not need it).
    """
    B, N, D, H, W, _ = coor.shape
    num_points = B * N * D * H * W
    device = coor.device
    lower = grid_lower_bound.to(coor)
    interval = grid_interval.to(coor)
    gx, gy, gz = (int(s) for s in grid_size)

    ranks_depth = torch.arange(num_points, dtype=torch.long, device=device)
    ranks_feat = torch.arange(
        B * N * H * W, dtype=torch.long, device=device).reshape(
            B, N, 1, H, W).expand(B, N, D, H, W).reshape(-1)
    batch_idx = torch.arange(
        B, dtype=torch.long, device=device).reshape(B, 1).expand(
            B, num_points // B).reshape(-1)

    idx = ((coor - lower) / interval).long().reshape(num_points, 3)
    kept = ((idx[:, 0] >= 0) & (idx[:, 0] < gx) & (idx[:, 1] >= 0)
            & (idx[:, 1] < gy) & (idx[:, 2] >= 0) & (idx[:, 2] < gz))
    idx = idx[kept]
    ranks_bev = (batch_idx[kept] * (gz * gy * gx) + idx[:, 2] * (gy * gx) +
                 idx[:, 1] * gx + idx[:, 0])
    return ranks_bev, ranks_depth[kept], ranks_feat[kept]


def bev_pool(depth: Tensor, feat: Tensor, ranks_depth: Tensor,
             ranks_feat: Tensor, ranks_bev: Tensor,
             bev_feat_shape: Sequence[int]) -> Tensor:
    """Sum depth-weighted image features into BEV cells (pure PyTorch).

    Args:
        depth (Tensor): Depth distribution, shape ``(B, N, D, H, W)``.
        feat (Tensor): Image (context) features, channel-last,
            shape ``(B, N, H, W, C)``.
        ranks_depth (Tensor): ``(P,)`` indices into ``depth.reshape(-1)``.
        ranks_feat (Tensor): ``(P,)`` indices into
            ``feat.reshape(-1, C)``.
        ranks_bev (Tensor): ``(P,)`` indices into the flattened output
            ``(B*Z*Y*X)``.
        bev_feat_shape (sequence of int): ``(B, Z, Y, X, C)``.

    Returns:
        Tensor: BEV features of shape ``(B, C, Z, Y, X)``; cells that receive
        no point are zero.  Differentiable w.r.t. ``depth`` and ``feat``.
    """
    B, Z, Y, X, C = (int(s) for s in bev_feat_shape)
    assert feat.shape[-1] == C, (feat.shape, bev_feat_shape)
    # (also with zero kept points, so the output stays in the graph)
    weights = depth.reshape(-1)[ranks_depth].unsqueeze(1)
    values = feat.reshape(-1, C)[ranks_feat] * weights
    out = feat.new_zeros((B * Z * Y * X, C)).index_add(0, ranks_bev, values)
    return out.reshape(B, Z, Y, X, C).permute(0, 4, 1, 2, 3).contiguous()
