"""Oracle check of BEVDet's box coding: GT -> head targets -> decode -> output frame -> metric.

If the heat-map/regression targets and the decoder (or the BEV -> LiDAR output transform)
disagreed anywhere (grid offset, axis order, gravity/bottom centre, yaw, velocity frame), a
model could never exceed a ceiling however well it learned. Feeding the targets back as
"perfect predictions" through the real NuScenesMetric must score close to 1; the remaining
gap is objects sharing one 3.2 m BEV cell of the tiny grid.
"""
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'bevdet', 'bevdet-tiny_synth.py')
PREFIX = 'pred_instances_3d_NuScenes'


def _oracle_predictions(head, targets):
    """Per-task head outputs whose decoding reproduces the targets."""
    heatmaps, anno_boxes, inds, masks = targets
    preds = []
    for t, hm in enumerate(heatmaps):
        H, W = hm.shape[-2:]
        logit = torch.where(hm >= 1.0, torch.tensor(8.0), torch.tensor(-8.0))
        box = torch.zeros(1, H * W, anno_boxes[t].shape[-1])
        m = masks[t][0].bool()
        box[0, inds[t][0][m]] = anno_boxes[t][0][m]
        box = box.view(1, H, W, -1).permute(0, 3, 1, 2)
        preds.append([dict(heatmap=logit, reg=box[:, 0:2], height=box[:, 2:3],
                           dim=box[:, 3:6], rot=box[:, 6:8], vel=box[:, 8:10])])
    return tuple(preds)


def _score(synthetic_root, shift_m=0.0):
    import ptqat.plugin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData
    from mmdet3d.registry import DATASETS, METRICS, MODELS
    root = synthetic_root[0].rstrip('/') + '/'
    cfg = Config.fromfile(TINY)
    init_default_scope('mmdet3d')
    model = MODELS.build(cfg.model).eval()
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.update(data_root=root, pipeline=cfg.train_pipeline, test_mode=False,
                  filter_empty_gt=False, modality=cfg.train_dataloader.dataset.modality)
    ds_cfg.metainfo.version = 'v1.0-mini'
    dataset = DATASETS.build(ds_cfg)
    cfg.val_evaluator.update(data_root=root, ann_file=root + 'nuscenes_infos_val.pkl')
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = dataset.metainfo
    head = model.pts_bbox_head
    for i in range(len(dataset)):
        data = dataset[i]
        sample = data['data_samples']
        preds = _oracle_predictions(head, head.get_targets([sample.gt_instances_3d]))
        result = head.predict_by_feat(preds, [sample.metainfo])[0]
        if shift_m:
            result.bboxes_3d.tensor[:, 0] += shift_m
        sample.pred_instances_3d = model.to_output_frame(result, sample, data['inputs']['bda'])
        sample.pred_instances = InstanceData()
        metric.process({}, [sample.to_dict()])
    return metric.compute_metrics(metric.results)


def test_decoded_targets_score_near_one(synthetic_root):
    metrics = _score(synthetic_root)
    assert metrics[f'{PREFIX}/mAP'] > 0.85
    assert metrics[f'{PREFIX}/NDS'] > 0.9
    assert metrics[f'{PREFIX}/mATE'] < 0.05  # the 0.1 m target voxel rounding, not more


def test_shifted_decoding_is_penalised(synthetic_root):
    """The same check fails for a decoder that is off by 1.5 m in x."""
    metrics = _score(synthetic_root, shift_m=1.5)
    assert metrics[f'{PREFIX}/mATE'] > 1.0
    assert metrics[f'{PREFIX}/NDS'] < 0.8
