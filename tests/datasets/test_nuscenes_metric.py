"""mmdet3d's NuScenesMetric (the real devkit underneath) on the synthetic val split."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet3d.datasets import NuScenesDataset
from mmdet3d.evaluation import NuScenesMetric
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.registry import init_default_scope

from ptqat.datasets.nuscenes_infos import CAMERAS

PREFIX = 'pred_instances_3d_NuScenes'  # the Evaluator adds the 'NuScenes metric/' scope


def _gt_predictions(root, noise=0.0, drop=0.0, seed=0):
    init_default_scope('mmdet3d')
    # version must be passed: NuScenesDataset.METAINFO says v1.0-trainval and the pkl's
    # metainfo does not override it
    ds = NuScenesDataset(data_root=root, ann_file='nuscenes_infos_val.pkl', pipeline=[],
                         metainfo=dict(version='v1.0-mini'), test_mode=False,
                         modality=dict(use_lidar=True, use_camera=True), filter_empty_gt=False,
                         data_prefix=dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP',
                                          **{c: f'samples/{c}' for c in CAMERAS}))
    rng = np.random.default_rng(seed)
    preds = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        ann = info['ann_info']
        keep = ann['gt_labels_3d'] >= 0
        boxes = ann['gt_bboxes_3d'].tensor[keep].clone()
        if noise:
            boxes[:, :2] += torch.from_numpy(rng.normal(0, noise, (len(boxes), 2))).float()
            boxes[:, 3:6] *= torch.from_numpy(rng.uniform(1 - noise / 4, 1 + noise / 4, (len(boxes), 3))).float()
            boxes[:, 6] += torch.from_numpy(rng.normal(0, noise / 2, len(boxes))).float()
            boxes[:, 7:9] += torch.from_numpy(rng.normal(0, noise, (len(boxes), 2))).float()
        scores = torch.from_numpy(rng.uniform(0.3, 1.0, len(boxes))).float()
        if drop:
            scores[torch.from_numpy(rng.random(len(boxes)) < drop)] = 0.0
        preds.append(dict(
            pred_instances_3d=dict(bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9),
                                   scores_3d=scores,
                                   labels_3d=torch.as_tensor(ann['gt_labels_3d'][keep])),
            pred_instances=dict(), sample_idx=info['sample_idx']))
    return ds, preds


def _evaluate(root, ds, preds, tmp_path):
    metric = NuScenesMetric(data_root=root, ann_file=osp.join(root, 'nuscenes_infos_val.pkl'),
                            metric='bbox', jsonfile_prefix=str(tmp_path / 'results'))
    metric.dataset_meta = ds.metainfo
    metric.process({}, preds)
    return metric.compute_metrics(metric.results)


def test_ground_truth_scores_one(synthetic_root, tmp_path):
    root = synthetic_root[0]
    ds, preds = _gt_predictions(root)
    assert ds.metainfo['version'] == 'v1.0-mini'
    assert sum(len(p['labels_3d']) for p in (q['pred_instances_3d'] for q in preds)) > 30
    m = _evaluate(root, ds, preds, tmp_path)
    assert m[f'{PREFIX}/NDS'] == pytest.approx(1.0, abs=1e-4)  # float32 box round trip
    assert m[f'{PREFIX}/mAP'] == pytest.approx(1.0, abs=1e-6)
    for err in ('mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE'):
        assert m[f'{PREFIX}/{err}'] == pytest.approx(0.0, abs=1e-3), err


def test_noisy_boxes_score_lower(synthetic_root, tmp_path):
    root = synthetic_root[0]
    scores = []
    for noise in (0.3, 1.0):
        ds, preds = _gt_predictions(root, noise=noise, drop=0.2)
        m = _evaluate(root, ds, preds, tmp_path / str(noise))
        scores.append((m[f'{PREFIX}/NDS'], m[f'{PREFIX}/mAP']))
    assert 1.0 > scores[0][0] > scores[1][0] > 0.0
    assert 1.0 > scores[0][1] > scores[1][1]
