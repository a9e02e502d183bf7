"""Shared helpers for the BEVDet tests: configs, cameras, random batches.

(A uniquely named module instead of a conftest.py so that it cannot clash
with helpers of other test folders under pytest's rootdir-less imports.)
"""
import math
import os.path as osp

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', '_base_', 'models')

# nuScenes-like camera yaw angles (deg) in BEVDet's camera order
CAM_YAWS = (55.0, 0.0, -55.0, 110.0, 180.0, -110.0)


def load_model_cfg(name):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    init_default_scope('mmdet3d')
    cfg.model.img_backbone.init_cfg = None  # no downloads in tests
    return cfg


def build_model(name):
    from mmdet3d.registry import MODELS
    cfg = load_model_cfg(name)
    return MODELS.build(cfg.model), cfg


def cam_to_ego(yaw_deg, height=1.5, radius=1.0):
    """4x4 camera (x right, y down, z forward) -> ego (x fwd, y left, z up)."""
    y = math.radians(yaw_deg)
    fwd = np.array([math.cos(y), math.sin(y), 0.0])
    right = np.array([math.sin(y), -math.cos(y), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = right, down, fwd
    m[:3, 3] = radius * fwd + np.array([0.0, 0.0, height])
    return m


def make_camera_inputs(batch, img_hw, num_cams=6, orig_hw=(900, 1600)):
    """Camera tensors of a resize + bottom-crop augmentation (no flip)."""
    h, w = img_hw
    scale = w / orig_hw[1]
    crop_top = orig_hw[0] * scale - h
    K = torch.tensor([[1260.0, 0, 800.0], [0, 1260.0, 450.0], [0, 0, 1]])
    s2e = torch.stack([
        torch.as_tensor(cam_to_ego(CAM_YAWS[i % 6]), dtype=torch.float32)
        for i in range(num_cams)
    ])
    post_rot = torch.diag(torch.tensor([scale, scale, 1.0]))
    post_tran = torch.tensor([0.0, -crop_top, 0.0])
    return dict(
        sensor2keyegos=s2e.expand(batch, -1, -1, -1).clone(),
        ego2globals=torch.eye(4).expand(batch, num_cams, 4, 4).clone(),
        intrins=K.expand(batch, num_cams, 3, 3).clone(),
        post_rots=post_rot.expand(batch, num_cams, 3, 3).clone(),
        post_trans=post_tran.expand(batch, num_cams, 3).clone(),
        bda=torch.eye(4).expand(batch, 4, 4).clone())


def random_gt_instances(num, seed=0):
    from mmengine.structures import InstanceData
    from mmdet3d.structures import LiDARInstance3DBoxes
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=g) * 80 - 40
    z = torch.rand(num, 1, generator=g) * 2 - 2
    dims = torch.rand(num, 3, generator=g) * 3 + 0.5
    yaw = torch.rand(num, 1, generator=g) * 6.28 - 3.14
    vel = torch.randn(num, 2, generator=g)
    inst = InstanceData()
    inst.bboxes_3d = LiDARInstance3DBoxes(
        torch.cat([xy, z, dims, yaw, vel], 1), box_dim=9)
    inst.labels_3d = torch.randint(0, 10, (num, ), generator=g)
    return inst


def make_data_samples(batch, num_gt=5, metainfo=None):
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    samples = []
    for i in range(batch):
        meta = dict(box_type_3d=LiDARInstance3DBoxes, **(metainfo or {}))
        s = Det3DDataSample(metainfo=meta)
        s.gt_instances_3d = random_gt_instances(num_gt, seed=i)
        samples.append(s)
    return samples


def make_batch(batch, img_hw, num_cams=6, seed=0):
    """A model-ready ``inputs`` dict (already normalised float images)."""
    g = torch.Generator().manual_seed(seed)
    inputs = make_camera_inputs(batch, img_hw, num_cams)
    inputs['imgs'] = torch.randn(batch, num_cams, 3, *img_hw, generator=g)
    return inputs
