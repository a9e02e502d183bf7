"""Deterministic random samples for the metric tests (shared by the DDP worker)."""
import numpy as np


def occ_samples(n=5, shape=(8, 8, 4), seed=0):
    """``n`` data-sample dicts with a noisy ``pred_occ`` and GT in ``eval_ann_info``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gt = rng.integers(0, 18, shape).astype(np.uint8)
        pred = np.where(rng.random(shape) < 0.6, gt, rng.integers(0, 18, shape)).astype(np.uint8)
        mask = rng.random(shape) < 0.7
        out.append(dict(sample_idx=i, pred_occ=pred, eval_ann_info=dict(
            voxel_semantics=gt, mask_camera=mask, mask_lidar=rng.random(shape) < 0.5)))
    return out


def map_samples(n=5, classes=6, hw=(10, 12), seed=0):
    """``n`` data-sample dicts with noisy ``pred_masks_bev`` scores and 0/1 GT."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gt = (rng.random((classes,) + hw) < 0.3).astype(np.uint8)
        scores = np.clip(gt * 0.5 + rng.random(gt.shape) * 0.6, 0, 1)
        out.append(dict(sample_idx=i, pred_masks_bev=scores, eval_ann_info=dict(gt_masks_bev=gt)))
    return out


NUSCENES_PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes/'


def nuscenes_detection_metrics(detected, seed=0, prefix=NUSCENES_PREFIX, tp_error=None, ap_classes=None):
    """A flat metric dict as mmdet3d's ``NuScenesMetric`` returns it, made by nuscenes-devkit's
    ``DetectionMetrics`` (the devkit computes NDS, mAP and the mean errors): the classes in
    ``detected`` get random APs (only those in ``ap_classes`` if given; the others AP 0) and TP
    errors in [0.05, 0.9] (or ``tp_error``), the others what the devkit gives a class below its
    recall threshold (AP 0, every TP error 1); the random draws do not depend on ``detected``, so
    two calls with one seed differ only where the classes do. A traffic cone's
    orientation / velocity / attribute and a barrier's velocity / attribute errors are NaN as in
    the devkit. Per-class values rounded to 4 decimals as ``NuScenesMetric`` does."""
    from mmdet3d.evaluation.metrics import NuScenesMetric
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.constants import TP_METRICS
    from nuscenes.eval.detection.data_classes import DetectionMetrics
    cfg = config_factory('detection_cvpr_2019')
    rng = np.random.default_rng(seed)
    dm = DetectionMetrics(cfg)
    for cls in cfg.class_names:
        with_ap = cls in (detected if ap_classes is None else ap_classes)
        for dist in cfg.dist_ths:
            ap = float(rng.uniform(0.05, 0.5))
            dm.add_label_ap(cls, dist, ap if with_ap else 0.0)
        for err in TP_METRICS:
            undefined = (cls == 'traffic_cone' and err in ('attr_err', 'vel_err', 'orient_err')
                         or cls == 'barrier' and err in ('attr_err', 'vel_err'))
            drawn = float(rng.uniform(0.05, 0.9))
            value = tp_error if tp_error is not None else drawn
            dm.add_label_tp(cls, err, np.nan if undefined else value if cls in detected else 1.0)
    summary = dm.serialize()
    out = {}
    for cls in cfg.class_names:
        for dist, ap in summary['label_aps'][cls].items():
            out[f'{prefix}{cls}_AP_dist_{dist}'] = float(f'{ap:.4f}')
        for err, value in summary['label_tp_errors'][cls].items():
            out[f'{prefix}{cls}_{err}'] = float(f'{value:.4f}')
    for err, value in summary['tp_errors'].items():
        out[prefix + NuScenesMetric.ErrNameMapping[err]] = float(f'{value:.4f}')
    out[prefix + 'NDS'] = summary['nd_score']
    out[prefix + 'mAP'] = summary['mean_ap']
    return out
