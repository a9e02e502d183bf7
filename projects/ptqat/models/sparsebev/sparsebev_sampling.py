"""``SparseBEVSampling``: adaptive spatio-temporal sampling (SparseBEV §3.3)."""
from typing import List, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .msmv_sampling import make_sample_points, sampling_4d


def warp_by_velocity(points: Tensor, velocity: Tensor, time_diff: Tensor) -> Tensor:
    """Move each frame's sampling points back along the query velocity.

    Args:
        points: ``(B, Q, G·P, 3)`` points at the key frame (current LiDAR frame, metres).
        velocity: ``(B, Q, 2)`` (vx, vy) in m/s, current LiDAR frame.
        time_diff: ``(B, T)`` seconds from each frame to the key frame (``t_key - t``,
            >= 0; 0 for the key frame).

    Returns:
        ``(B, Q, T, G·P, 3)``: ``xy - v·Δt`` per frame, z unchanged. The result stays in the
        current LiDAR frame: the per-frame ``lidar2img`` holds the ego motion.
    """
    shift = velocity[:, :, None, :] * time_diff[:, None, :, None]  # (B, Q, T, 2)
    pts = points[:, :, None].expand(-1, -1, time_diff.shape[1], -1, -1)
    return torch.cat([pts[..., 0:2] - shift[:, :, :, None], pts[..., 2:3]], dim=-1)


@MODELS.register_module()
class SparseBEVSampling(BaseModule):
    """Sampling points from the query box (offsets scaled by the box size, rotated by its
    yaw), warped to each frame by the query velocity, projected into every view, sampled
    at every level with learned level weights.

    Args:
        embed_dims: C.
        num_frames: T (key frame + sweeps).
        num_groups: G channel groups (points are per group).
        num_points: P points per group and frame.
        num_levels: L feature levels.
        pc_range: point-cloud range (metres).
    """

    def __init__(self, embed_dims: int = 256, num_frames: int = 8, num_groups: int = 4,
                 num_points: int = 4, num_levels: int = 4, pc_range: Sequence[float] = (),
                 init_cfg=None):
        super().__init__(init_cfg)
        self.num_frames, self.num_groups = num_frames, num_groups
        self.num_points, self.num_levels = num_points, num_levels
        self.pc_range = list(pc_range)
        self.sampling_offset = nn.Linear(embed_dims, num_groups * num_points * 3)
        self.scale_weights = nn.Linear(embed_dims, num_groups * num_points * num_levels)

    def init_weights(self) -> None:
        """Upstream: zero offset weights, offsets start uniform in [-0.5, 0.5] box sizes."""
        with torch.no_grad():
            nn.init.zeros_(self.sampling_offset.weight)
            nn.init.uniform_(self.sampling_offset.bias, -0.5, 0.5)

    def sample_points(self, query_bbox: Tensor, query_feat: Tensor, time_diff: Tensor) -> Tensor:
        """``(B, Q, T, G, P, 3)`` LiDAR-frame points of every frame."""
        B, Q = query_bbox.shape[:2]
        G, P = self.num_groups, self.num_points
        offset = self.sampling_offset(query_feat).view(B, Q, G * P, 3)
        points = make_sample_points(query_bbox, offset, self.pc_range)
        points = warp_by_velocity(points, query_bbox[..., 8:10].detach(), time_diff)
        return points.reshape(B, Q, time_diff.shape[1], G, P, 3)

    def forward(self, query_bbox: Tensor, query_feat: Tensor, mlvl_feats: List[Tensor],
                lidar2img: Tensor, time_diff: Tensor, image_hw: Tuple[int, int]) -> Tensor:
        """
        Args:
            query_bbox: ``(B, Q, 10)`` query codes; query_feat ``(B, Q, C)``.
            mlvl_feats: grouped features (see ``group_features``).
            lidar2img: ``(B, T·N, 4, 4)``; time_diff ``(B, T)`` seconds; image_hw ``(H, W)``.

        Returns:
            ``(B, Q, G, T·P, C/G)`` sampled features.
        """
        B, Q = query_bbox.shape[:2]
        T = time_diff.shape[1]
        if T != self.num_frames:
            raise ValueError(f'SparseBEVSampling: {T} frames, configured for {self.num_frames}')
        points = self.sample_points(query_bbox, query_feat, time_diff)
        sw = self.scale_weights(query_feat).view(B, Q, self.num_groups, 1, self.num_points,
                                                 self.num_levels).softmax(-1)
        sw = sw.expand(-1, -1, -1, T, -1, -1)
        return sampling_4d(points, mlvl_feats, sw, lidar2img, image_hw)
