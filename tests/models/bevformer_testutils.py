"""Helpers for the BEVFormer tests: configs, brute-force bilinear sampling, fake cameras."""
import math
import os.path as osp

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', '_base_', 'models')


def build_bevformer(name='bevformer-tiny-synth.py', seed=0):
    """Build a BEVFormer model config from configs/_base_/models (random init)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    return model, cfg


def bilinear(vmap, x, y):
    """Sample ``vmap (H, W, C)`` at normalised ``(x, y)`` (pixel centres at
    ``(i + 0.5) / W``), bilinear, zero outside: a plain loop, no grid_sample."""
    H, W = vmap.shape[:2]
    px, py = float(x) * W - 0.5, float(y) * H - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(vmap.shape[-1], dtype=vmap.dtype)
    for yi in (y0, y0 + 1):
        for xi in (x0, x0 + 1):
            w = (1 - abs(px - xi)) * (1 - abs(py - yi))
            if 0 <= xi < W and 0 <= yi < H:
                out = out + w * vmap[yi, xi]
    return out


def pinhole_lidar2img(num_cams, img_hw, focal=None):
    """``(N, 4, 4)`` LiDAR->image matrices of cameras at the origin looking
    along yaw = 360° k / N (x forward, y left, z up LiDAR frame)."""
    H, W = img_hw
    f = focal or W / 2
    K = np.array([[f, 0, W / 2, 0], [0, f, H / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    mats = []
    for k in range(num_cams):
        yaw = 2 * math.pi * k / num_cams
        fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.array([0.0, 0.0, -1.0])
        l2c = np.eye(4)
        l2c[0, :3], l2c[1, :3], l2c[2, :3] = right, down, fwd
        mats.append(K @ l2c)
    return np.stack(mats)


def make_meta(scene='scene-a', frame_idx=0, pos=(0.0, 0.0, 0.0), yaw_deg=0.0,
              img_hw=(128, 352), num_cams=6):
    """A BEVFormer image meta with a raw CAN-bus vector."""
    can_bus = np.zeros(18)
    can_bus[:3] = pos
    can_bus[-2] = math.radians(yaw_deg)
    can_bus[-1] = yaw_deg
    return dict(lidar2img=pinhole_lidar2img(num_cams, img_hw), img_shape=img_hw, pad_shape=img_hw,
                can_bus=can_bus, scene_token=scene, frame_idx=frame_idx)
