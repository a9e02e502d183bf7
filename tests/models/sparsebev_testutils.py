"""Helpers for the SparseBEV tests: build from configs/_base_/models, cameras, samples."""
import math
import os.path as osp

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', '_base_', 'models')


def build_sparsebev(name='sparsebev-tiny.py', seed=0, init=True):
    """Build a SparseBEV model config (random init; upstream's init_weights when ``init``)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if init:
        model.pts_bbox_head.init_weights()
    return model, cfg


def camera_pose(position, yaw):
    """``(4, 4)`` camera->frame pose of a camera at ``position`` looking along ``yaw``
    (x right, y down, z forward camera axes; z up frame)."""
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, down, fwd
    pose[:3, 3] = position
    return pose


def intrinsics(img_hw, focal=None):
    H, W = img_hw
    f = focal or W / 2
    K = np.eye(4)
    K[:3, :3] = [[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]]
    return K


def ring_lidar2img(num_cams, img_hw, lidar2frame=np.eye(4), cam_positions=None):
    """``(N, 4, 4)`` LiDAR->image of a ring of N cameras at yaw 360° k / N; the cameras sit
    in a frame related to the LiDAR frame by ``lidar2frame``."""
    mats = []
    for k in range(num_cams):
        pos = np.zeros(3) if cam_positions is None else cam_positions[k]
        cam2frame = camera_pose(pos, 2 * math.pi * k / num_cams)
        mats.append(intrinsics(img_hw) @ np.linalg.inv(cam2frame) @ lidar2frame)
    return np.stack(mats)


def make_samples(batch, num_frames, img_hw=(128, 352), num_cams=6, dt=0.1, with_gt=True):
    """Data samples with static ring cameras for every frame and one GT box each."""
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    from mmengine.structures import InstanceData
    l2i = np.concatenate([ring_lidar2img(num_cams, img_hw)] * num_frames)
    ts = np.repeat(10.0 - dt * np.arange(num_frames), num_cams)
    out = []
    for b in range(batch):
        s = Det3DDataSample(metainfo=dict(lidar2img=l2i, img_timestamp=ts, img_shape=img_hw))
        if with_gt:
            g = InstanceData()
            g.bboxes_3d = LiDARInstance3DBoxes(
                torch.tensor([[5.0 + b, 2.0, -1.0, 4.0, 2.0, 1.5, 0.3, 1.0, 0.0]]), box_dim=9)
            g.labels_3d = torch.tensor([b % 10])
            s.gt_instances_3d = g
        out.append(s)
    return out
