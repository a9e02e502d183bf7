"""LiDAR depth targets per camera image (BEVDepth's ``PointToMultiViewDepth``)."""
from typing import Dict, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS


def project_to_depth_map(points_cam: np.ndarray, intrin: np.ndarray, post_rot: np.ndarray,
                         post_tran: np.ndarray, size: Sequence[int],
                         depth_range: Sequence[float]) -> np.ndarray:
    """Depth image of camera-frame points, nearest point per pixel.

    Args:
        points_cam: (P, 3) points in the camera frame (OpenCV axes: z forward), metres.
        intrin: (3, 3) camera matrix of the original image.
        post_rot, post_tran: (3, 3), (3,) image augmentation,
            ``pixel' = post_rot @ (u, v, d) + post_tran`` (as ``PrepareImageInputs``).
        size: (H, W) of the network input.
        depth_range: ``[min, max)`` metres; other points are dropped.

    Returns:
        (H, W) float32 metres, 0 where no point falls.
    """
    height, width = int(size[0]), int(size[1])
    depth = points_cam[:, 2]
    keep = depth > 1e-3
    pts, depth = points_cam[keep], depth[keep]
    uv = pts @ intrin.T
    uvd = np.concatenate([uv[:, :2] / uv[:, 2:3], depth[:, None]], axis=1)
    uvd = uvd @ post_rot.T + post_tran[None]
    u, v, d = np.round(uvd[:, 0]), np.round(uvd[:, 1]), uvd[:, 2]
    keep = ((u >= 0) & (u < width) & (v >= 0) & (v < height) & (d >= depth_range[0])
            & (d < depth_range[1]))
    u, v, d = u[keep].astype(np.int64), v[keep].astype(np.int64), d[keep]
    out = np.zeros((height, width), dtype=np.float32)
    if d.size == 0:
        return out
    order = np.argsort(d, kind='stable')  # nearest first
    flat = v[order] * width + u[order]
    _, first = np.unique(flat, return_index=True)
    out.reshape(-1)[flat[first]] = d[order][first]
    return out


@TRANSFORMS.register_module()
class PointToMultiViewDepth(BaseTransform):
    """Project the key-frame LiDAR points into every (augmented) key-frame camera image.

    Required keys: ``points`` (mmdet3d ``LiDARPoints`` or (P, >=3) array, LiDAR frame, from
    ``LoadPointsFromFile(coord_type='LIDAR')``), ``lidar_points.lidar2ego`` (4×4),
    ``ego2global`` (4×4, LiDAR time), and from :class:`PrepareImageInputs`: ``img``
    ((T*)N, 3, H, W), ``sensor2egos``, ``ego2globals`` (camera time), ``intrins``,
    ``post_rots``, ``post_trans``, ``cam_names``. With sequential inputs only the first
    ``N = len(cam_names)`` entries (the current frame) are used.

    The chain is ``cam <- inv(cam2ego) <- inv(ego2global_cam) <- ego2global_lidar <-
    lidar2ego`` (float64), so the ego motion between the LiDAR and each camera's timestamp
    is compensated as in the info files.

    Added key: ``gt_depth`` float32 (N, H, W) metres, 0 = no point; the nearest point wins
    where several fall on one pixel; points outside ``grid_config['depth'][:2]`` are dropped.

    Args:
        grid_config (dict): needs ``depth = [min, max, step]`` (metres).
        downsample (int): Output at ``(H, W) / downsample`` (upstream: 1; the model's depth
            loss pools by its own feature stride).
    """

    def __init__(self, grid_config: Dict[str, Sequence[float]], downsample: int = 1):
        if 'depth' not in grid_config or len(grid_config['depth']) != 3:
            raise ValueError('grid_config needs depth=[min, max, step], got '
                             f'{grid_config.get("depth")!r}')
        if not (isinstance(downsample, int) and downsample >= 1):
            raise ValueError(f'downsample must be an int >= 1, got {downsample!r}')
        self.depth_range = (float(grid_config['depth'][0]), float(grid_config['depth'][1]))
        self.downsample = downsample

    def transform(self, results: dict) -> dict:
        for key in ('points', 'img', 'sensor2egos', 'ego2globals', 'intrins', 'post_rots',
                    'post_trans', 'cam_names', 'ego2global'):
            if key not in results:
                raise KeyError(f'PointToMultiViewDepth needs results[{key!r}]: put it after '
                               'LoadPointsFromFile and PrepareImageInputs')
        pts = results['points']
        pts = pts.tensor.numpy() if hasattr(pts, 'tensor') else np.asarray(pts)
        pts = pts[:, :3].astype(np.float64)
        lidar2global = (np.asarray(results['ego2global'], np.float64)
                        @ np.asarray(results['lidar_points']['lidar2ego'], np.float64))
        pts_global = pts @ lidar2global[:3, :3].T + lidar2global[:3, 3]
        n_cams = len(results['cam_names'])
        height, width = (int(s) // self.downsample for s in results['img'].shape[-2:])
        scale = np.diag([1.0 / self.downsample, 1.0 / self.downsample, 1.0])
        maps = []
        for i in range(n_cams):
            cam2global = (np.asarray(results['ego2globals'][i], np.float64)
                          @ np.asarray(results['sensor2egos'][i], np.float64))
            global2cam = np.linalg.inv(cam2global)
            cam_pts = pts_global @ global2cam[:3, :3].T + global2cam[:3, 3]
            post_rot = scale @ np.asarray(results['post_rots'][i], np.float64)
            post_tran = scale @ np.asarray(results['post_trans'][i], np.float64)
            maps.append(project_to_depth_map(
                cam_pts, np.asarray(results['intrins'][i], np.float64), post_rot, post_tran,
                (height, width), self.depth_range))
        results['gt_depth'] = np.stack(maps).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(depth_range={self.depth_range}, '
                f'downsample={self.downsample})')
