"""``BEVMapSegMetric``: BEV map segmentation IoU, BEVFusion's ``evaluate_map`` protocol.

For every class ``c`` and threshold ``t`` in ``0.35, 0.40, ..., 0.65``: ``P = score >= t``,
``G = gt``; ``TP/FP/FN`` are summed over the whole split and
``IoU[c, t] = TP / (TP + FP + FN + 1e-7)``. Reported: ``<cls>/iou@<t>``, ``<cls>/iou@max``
(best threshold per class, chosen on the evaluated set itself, as upstream) and the headline
``mean/iou@max`` (mean over classes of the per-class best) — fractions in [0, 1] as BEVFusion —
plus ``mIoU`` = ``100 * mean/iou@max``. Classes may overlap (multi-label); there is no ignore
region.

DDP: each sample's result is its ``(C, T, 3)`` int64 TP/FP/FN count array, not its masks.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet3d.registry import METRICS

#: BEVFusion's map classes (``divider`` = road_divider + lane_divider)
MAP_CLASSES = ('drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'divider')
THRESHOLDS = (0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy() if x.is_floating_point() else x.cpu().numpy()
    return np.asarray(x)


def map_seg_counts(scores, gt, thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """TP, FP, FN per class and threshold of one sample: int64 ``(C, T, 3)``.

    Args:
        scores: ``(C, H, W)`` probabilities in [0, 1].
        gt: ``(C, H, W)`` 0/1 (or bool) masks.
    """
    scores, gt = _np(scores), _np(gt).astype(bool)
    if scores.shape != gt.shape or scores.ndim != 3:
        raise ValueError(f'scores {scores.shape} and GT {gt.shape} must both be (C, H, W)')
    out = np.zeros((scores.shape[0], len(thresholds), 3), dtype=np.int64)
    for j, t in enumerate(thresholds):
        pos = scores >= t
        out[:, j, 0] = (pos & gt).sum(axis=(1, 2))
        out[:, j, 1] = (pos & ~gt).sum(axis=(1, 2))
        out[:, j, 2] = (~pos & gt).sum(axis=(1, 2))
    return out


@METRICS.register_module()
class BEVMapSegMetric(BaseMetric):
    """BEV map segmentation IoU at several thresholds (BEVFusion protocol).

    Reads ``pred_masks_bev`` (``(C, H, W)`` sigmoid scores) from each data sample and
    ``eval_ann_info['gt_masks_bev']`` (``(C, H, W)`` 0/1, from the test pipeline's
    ``LoadBEVSegmentation``); both in the same class order and layout.

    Args:
        classes (sequence[str]): class names, in the channel order of both arrays.
        thresholds (sequence[float]): score thresholds.
    """

    default_prefix = 'map'

    def __init__(self, classes: Sequence[str] = MAP_CLASSES,
                 thresholds: Sequence[float] = THRESHOLDS, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix, **kwargs)
        self.classes = tuple(classes)
        self.thresholds = tuple(float(t) for t in thresholds)
        if not self.classes or not self.thresholds:
            raise ValueError(f'need classes and thresholds; got {classes}, {thresholds}')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_masks_bev' not in sample:
                raise KeyError('BEVMapSegMetric: the prediction has no pred_masks_bev (use a map '
                               f'segmentation detector); keys: {sorted(sample)}')
            ann = sample.get('eval_ann_info', None) or {}
            if 'gt_masks_bev' not in ann:
                raise KeyError(
                    f"BEVMapSegMetric: sample {sample.get('sample_idx', '?')} has no "
                    "eval_ann_info['gt_masks_bev']: add LoadBEVSegmentation to the test pipeline")
            scores = sample['pred_masks_bev']
            if len(scores) != len(self.classes):
                raise ValueError(f'{len(scores)} predicted classes, metric has {self.classes}')
            self.results.append(map_seg_counts(scores, ann['gt_masks_bev'], self.thresholds))

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        counts = np.sum(np.stack(results), axis=0).astype(np.float64)
        tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
        iou = tp / (tp + fp + fn + 1e-7)  # (C, T)
        out = {}
        best = iou.max(axis=1)
        for c, name in enumerate(self.classes):
            for j, t in enumerate(self.thresholds):
                out[f'{name}/iou@{t:.2f}'] = float(iou[c, j])
            out[f'{name}/iou@max'] = float(best[c])
        out['mean/iou@max'] = float(best.mean())
        out['mIoU'] = float(best.mean() * 100)
        lines = [f'{"class":<16}{"IoU@max":>9}{"best t":>8}']
        for c, name in enumerate(self.classes):
            lines.append(f'{name:<16}{best[c] * 100:9.2f}{self.thresholds[iou[c].argmax()]:8.2f}')
        lines.append(f'{"mean":<16}{best.mean() * 100:9.2f}')
        MMLogger.get_current_instance().info('BEV map segmentation IoU:\n' + '\n'.join(lines))
        return out
