"""Feed (optionally perturbed) ground truth through mmdet3d's ``NuScenesMetric``.

A data-set sanity check: perfect boxes must score NDS = mAP = 1 with the real nuscenes-devkit
evaluation underneath, and perturbed boxes must score lower.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ..datasets.nuscenes_infos import CAMERAS

METRIC_PREFIX = 'pred_instances_3d_NuScenes'


def ground_truth_predictions(data_root: str, ann_file: str, version: str, noise: float = 0.0,
                             drop: float = 0.0, seed: int = 0) -> Tuple[object, List[dict]]:
    """Predictions made from the val ground truth, as a detector's ``predict`` would return.

    Args:
        ann_file: info file name relative to ``data_root``.
        version: nuScenes version; passed to the dataset because ``NuScenesDataset.METAINFO``
            says ``v1.0-trainval`` and the info file's metainfo does not override it.
        noise: σ of the perturbation: centre (m), velocity (m/s), σ/2 yaw (rad), σ/4 relative size.
        drop: fraction of boxes given score 0.
    Returns:
        The ``NuScenesDataset`` and one prediction dict per sample.
    """
    from mmdet3d.datasets import NuScenesDataset
    from mmdet3d.structures import LiDARInstance3DBoxes
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    ds = NuScenesDataset(data_root=data_root, ann_file=ann_file, pipeline=[],
                         metainfo=dict(version=version), test_mode=False,
                         modality=dict(use_lidar=True, use_camera=True), filter_empty_gt=False,
                         data_prefix=dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP',
                                          **{c: f'samples/{c}' for c in CAMERAS}))
    rng = np.random.default_rng(seed)
    preds = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        ann = info['ann_info']
        keep = ann['gt_labels_3d'] >= 0
        boxes = ann['gt_bboxes_3d'].tensor[keep].clone().double()
        n = len(boxes)
        if noise:
            boxes[:, :2] += torch.from_numpy(rng.normal(0, noise, (n, 2)))
            boxes[:, 3:6] *= torch.from_numpy(rng.uniform(1 - noise / 4, 1 + noise / 4, (n, 3)))
            boxes[:, 6] += torch.from_numpy(rng.normal(0, noise / 2, n))
            boxes[:, 7:9] += torch.from_numpy(rng.normal(0, noise, (n, 2)))
        scores = torch.from_numpy(rng.uniform(0.3, 1.0, n)).float()
        if drop:
            scores[torch.from_numpy(rng.random(n) < drop)] = 0.0
        preds.append(dict(
            pred_instances_3d=dict(bboxes_3d=LiDARInstance3DBoxes(boxes.float(), box_dim=9),
                                   scores_3d=scores,
                                   labels_3d=torch.as_tensor(ann['gt_labels_3d'][keep])),
            pred_instances=dict(), sample_idx=info['sample_idx']))
    return ds, preds


def evaluate_predictions(data_root: str, ann_file: str, dataset, preds: List[dict],
                         jsonfile_prefix: Optional[str] = None) -> Dict[str, float]:
    """Run ``NuScenesMetric`` on prediction dicts; returns its metrics (keys ``METRIC_PREFIX/...``)."""
    from mmdet3d.evaluation import NuScenesMetric
    metric = NuScenesMetric(data_root=data_root, ann_file=osp.join(data_root, ann_file),
                            metric='bbox', jsonfile_prefix=jsonfile_prefix)
    metric.dataset_meta = dataset.metainfo
    metric.process({}, preds)
    return metric.compute_metrics(metric.results)
