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
