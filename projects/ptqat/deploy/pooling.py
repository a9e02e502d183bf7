"""BEV pooling for deployment: indices computed on the host, pooling in standard ONNX ops.

As BEVDet's TensorRT deployment does, the camera geometry (which frustum point lands in which
BEV cell) is computed once per camera set-up on the host (:func:`pooling_indices`) and fed to
the graph as three int64 index vectors; inside the graph the pooling is a ``Gather`` of the
depth probabilities and context features, a ``Mul`` and a ``ScatterElements(reduction='add')``
into the flattened BEV grid (:func:`scatter_bev_pool`), i.e. ONNX opset >= 16 and no plugin.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..models.bevdet.bev_pool import voxel_pooling_prepare

__all__ = ['pooling_indices', 'scatter_bev_pool', 'RANK_NAMES']

#: graph input names of the three index vectors, in this order
RANK_NAMES = ('ranks_depth', 'ranks_feat', 'ranks_bev')


def pooling_indices(view_transformer, cams: Dict[str, Tensor], img_shape: Sequence[int],
                    feat_size: Sequence[int]) -> Dict[str, np.ndarray]:
    """Frustum-point indices of one sample (batch 1) for :func:`scatter_bev_pool`.

    Args:
        view_transformer: an :class:`LSSViewTransformer` (its frustum, geometry and grid).
        cams: ``sensor2keyegos (1, N, 4, 4)``, ``intrins (1, N, 3, 3)``, ``post_rots (1, N, 3, 3)``,
            ``post_trans (1, N, 3)``, ``bda (1, 4, 4)`` (metres, pixels).
        img_shape: ``(H_in, W_in)`` network input size in pixels.
        feat_size: ``(h, w)`` camera feature size.
    Returns:
        ``ranks_depth``, ``ranks_feat``, ``ranks_bev``: ``(P,)`` int64 arrays over the ``P``
        frustum points inside the grid (indices into the flattened ``(1, N, D, h, w)`` depth,
        ``(1, N, h, w)`` feature pixels and ``(1, Z, Y, X)`` grid).
    """
    b = cams['sensor2keyegos'].shape[0]
    if b != 1:
        raise ValueError(f'pooling indices are per sample: batch must be 1, got {b}')
    vt = view_transformer
    with torch.no_grad():
        frustum = vt.create_frustum(img_shape, feat_size, device=cams['sensor2keyegos'].device)
        coor = vt.get_geometry(cams['sensor2keyegos'], cams['intrins'], cams['post_rots'],
                               cams['post_trans'], cams['bda'], frustum)
        ranks_bev, ranks_depth, ranks_feat = voxel_pooling_prepare(
            coor, vt.grid_lower_bound, vt.grid_interval, vt.grid_size)
    out = dict(ranks_depth=ranks_depth, ranks_feat=ranks_feat, ranks_bev=ranks_bev)
    return {k: v.cpu().numpy().astype(np.int64) for k, v in out.items()}


def scatter_bev_pool(depth: Tensor, feat: Tensor, ranks_depth: Tensor, ranks_feat: Tensor,
                     ranks_bev: Tensor, grid: Tuple[int, int, int]) -> Tensor:
    """``out[r, c] = sum_i depth.flat[ranks_depth[i]] * feat.flat[ranks_feat[i], c]`` over the
    points with ``ranks_bev[i] == r`` (the sum of :func:`ptqat.models.bevdet.bev_pool.bev_pool`),
    written with Gather / Mul / ScatterElements(add) so that it exports to plain ONNX.

    Args:
        depth: ``(1, N, D, h, w)`` depth probabilities.
        feat: ``(1, N, C, h, w)`` context features (channel-first, as the depth net gives them).
        ranks_depth, ranks_feat, ranks_bev: ``(P,)`` int64 from :func:`pooling_indices`.
        grid: ``(X, Y, Z)`` cells.
    Returns:
        ``(1, C*Z, Y, X)`` BEV features, Z folded into the channels (``collapse_z``) as
        :meth:`LSSViewTransformer.splat` does.
    """
    gx, gy, gz = (int(g) for g in grid)
    c = feat.shape[2]
    feat = feat.permute(0, 1, 3, 4, 2).reshape(-1, c)
    weights = depth.reshape(-1).index_select(0, ranks_depth).unsqueeze(1)
    values = feat.index_select(0, ranks_feat) * weights                    # (P, C)
    index = ranks_bev.unsqueeze(1).expand(-1, c)
    out = torch.zeros(gz * gy * gx, c, dtype=feat.dtype, device=feat.device)
    out = out.scatter_add(0, index, values)                                 # (Z*Y*X, C)
    out = out.reshape(gz, gy, gx, c).permute(0, 3, 1, 2)                   # (Z, C, Y, X)
    return out.reshape(1, gz * c, gy, gx)   # channel z*C + c, as torch.cat(unbind(Z), dim=1)
