"""``Occ3DMetric``: the Occ3D-nuScenes occupancy mIoU (CVPR 2023 challenge protocol).

Protocol (``Metric_mIoU(num_classes=18, use_lidar_mask=False, use_image_mask=True)``):

1. per sample keep the voxels where ``mask_camera`` is set (and GT in ``[0, 18)``);
2. add ``bincount(18 * gt + pred)`` to an 18x18 confusion matrix ``hist[gt, pred]``;
3. over the split: ``IoU_c = hist[c, c] / (rowsum_c + colsum_c - hist[c, c])`` (NaN when class
   ``c`` is neither in the GT nor predicted), ``mIoU = 100 * nanmean(IoU_0 .. IoU_16)``.

``free`` (17) is a row and a column of the matrix but not part of the mean: a free voxel
predicted as ``car`` is a false positive of ``car``.

DDP: each sample's result is its confusion matrix (18x18 int64, 2.6 kB), not its volumes;
mmengine gathers those to rank 0 (dropping the sampler's padding) and they are summed there.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet3d.registry import METRICS

#: Occ3D-nuScenes classes, ids 0..17 (17 = free)
OCC3D_CLASSES = ('others', 'barrier', 'bicycle', 'bus', 'car', 'construction_vehicle',
                 'motorcycle', 'pedestrian', 'traffic_cone', 'trailer', 'truck',
                 'driveable_surface', 'other_flat', 'sidewalk', 'terrain', 'manmade',
                 'vegetation', 'free')


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def occ_confusion(pred, gt, mask: Optional[np.ndarray], num_classes: int = 18) -> np.ndarray:
    """Confusion matrix ``hist[gt, pred]`` (``(num_classes, num_classes)`` int64) of one sample.

    Args:
        pred: predicted labels, any integer array, e.g. ``(200, 200, 16)`` ``[x, y, z]``.
        gt: GT labels of the same shape; voxels outside ``[0, num_classes)`` are dropped.
        mask: bool/0-1 array of the same shape (``mask_camera``), or None for every voxel.
    Raises:
        ValueError: shapes differ, or a kept prediction is outside ``[0, num_classes)``.
    """
    pred, gt = _np(pred).astype(np.int64), _np(gt).astype(np.int64)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {pred.shape} != GT shape {gt.shape}')
    keep = (gt >= 0) & (gt < num_classes)
    if mask is not None:
        mask = _np(mask).astype(bool)
        if mask.shape != gt.shape:
            raise ValueError(f'mask shape {mask.shape} != GT shape {gt.shape}')
        keep &= mask
    p, g = pred[keep], gt[keep]
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f'predicted labels must lie in [0, {num_classes}); got '
                         f'[{p.min()}, {p.max()}]')
    return np.bincount(num_classes * g + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def per_class_iou(hist: np.ndarray) -> np.ndarray:
    """``diag / (rowsum + colsum - diag)`` per class (float64); NaN where the denominator is 0."""
    hist = hist.astype(np.float64)
    tp = np.diag(hist)
    denom = hist.sum(0) + hist.sum(1) - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(denom > 0, tp / np.where(denom > 0, denom, 1), np.nan)


@METRICS.register_module()
class Occ3DMetric(BaseMetric):
    """Occ3D-nuScenes mIoU over camera-visible voxels.

    Reads from each data sample (``predict`` output, as a dict):

    * ``pred_occ``: integer ``(200, 200, 16)`` label volume ``[x, y, z]`` in the ego frame;
    * ``eval_ann_info['voxel_semantics']`` (same shape, labels 0..17) and
      ``eval_ann_info['mask_camera']`` / ``['mask_lidar']``, put there by the test pipeline's
      ``LoadOccGTFromFile``.

    Returns ``mIoU`` (0-100, mean over the non-free classes present) and ``<class>_IoU``
    (0-100; NaN for a class absent from GT and prediction); logs a per-class table.

    Args:
        class_names (sequence[str]): ``num_classes`` names; default the 18 Occ3D classes.
        free_index (int or None): class excluded from the mean (17); None: mean over all.
        use_image_mask (bool): count only ``mask_camera`` voxels (the protocol: True).
        use_lidar_mask (bool): count only ``mask_lidar`` voxels.
    """

    default_prefix = 'occ'

    def __init__(self, class_names: Sequence[str] = OCC3D_CLASSES, free_index: Optional[int] = 17,
                 use_image_mask: bool = True, use_lidar_mask: bool = False,
                 collect_device: str = 'cpu', prefix: Optional[str] = None, **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix, **kwargs)
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        if free_index is not None and not 0 <= free_index < self.num_classes:
            raise ValueError(f'free_index {free_index} must be None or in [0, {self.num_classes})')
        self.free_index = free_index
        self.use_image_mask = use_image_mask
        self.use_lidar_mask = use_lidar_mask

    def _gt(self, sample: dict) -> dict:
        ann = sample.get('eval_ann_info', None) or {}
        if 'voxel_semantics' not in ann:
            raise KeyError(
                f"Occ3DMetric: sample {sample.get('sample_idx', '?')} has no "
                "eval_ann_info['voxel_semantics']: add LoadOccGTFromFile to the test pipeline")
        return ann

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_occ' not in sample:
                raise KeyError('Occ3DMetric: the prediction has no pred_occ (use an occupancy '
                               f'detector); keys: {sorted(sample)}')
            ann = self._gt(sample)
            mask = None
            if self.use_image_mask:
                mask = _np(ann['mask_camera']).astype(bool)
            if self.use_lidar_mask:
                lidar = _np(ann['mask_lidar']).astype(bool)
                mask = lidar if mask is None else mask & lidar
            self.results.append(occ_confusion(sample['pred_occ'], ann['voxel_semantics'], mask,
                                              self.num_classes))

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        hist = np.sum(np.stack(results), axis=0)
        iou = per_class_iou(hist)
        keep = [c for c in range(self.num_classes) if c != self.free_index]
        valid = iou[keep][~np.isnan(iou[keep])]
        miou = float(valid.mean() * 100) if valid.size else float('nan')
        out = {'mIoU': round(miou, 4)}
        for c, name in enumerate(self.class_names):
            out[f'{name}_IoU'] = round(float(iou[c] * 100), 4)
        self._log_table(iou, hist, miou)
        return out

    def _log_table(self, iou: np.ndarray, hist: np.ndarray, miou: float) -> None:
        lines = [f'{"class":<22}{"IoU":>8}{"GT voxels":>12}', '-' * 42]
        for c, name in enumerate(self.class_names):
            tag = ' (not in mean)' if c == self.free_index else ''
            lines.append(f'{name:<22}{iou[c] * 100:8.2f}{int(hist[c].sum()):12d}{tag}')
        lines += ['-' * 42, f'{"mIoU":<22}{miou:8.2f}']
        MMLogger.get_current_instance().info('Occ3D per-class IoU:\n' + '\n'.join(lines))
