"""Occ3DMetric and BEVMapSegMetric: perfect predictions, hand-computed crafted cases, the
registry, and a real 2-process gloo evaluation that equals the single-process one."""
import json
import math
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)

from metric_samples import map_samples, occ_samples  # noqa: E402
from ptqat.evaluation import BEVMapSegMetric, Occ3DMetric  # noqa: E402

CAR, ROAD, FREE = 4, 11, 17


def _run(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_occ_perfect_prediction_is_100():
    samples = occ_samples(3)
    for s in samples:
        s['pred_occ'] = s['eval_ann_info']['voxel_semantics'].copy()
    res = _run(Occ3DMetric(), samples)
    assert res['mIoU'] == pytest.approx(100.0)
    assert res['car_IoU'] == pytest.approx(100.0) and res['free_IoU'] == pytest.approx(100.0)


def test_occ_crafted_case_free_as_car_and_camera_mask():
    # voxel:      0    1     2     3     4     5 (outside mask_camera)
    gt = np.array([CAR, CAR, FREE, FREE, ROAD, FREE], np.uint8).reshape(6, 1, 1)
    pred = np.array([CAR, ROAD, CAR, FREE, ROAD, CAR], np.uint8).reshape(6, 1, 1)
    mask = np.array([1, 1, 1, 1, 1, 0], bool).reshape(6, 1, 1)
    res = _run(Occ3DMetric(), [dict(pred_occ=pred, eval_ann_info=dict(
        voxel_semantics=gt, mask_camera=mask))])
    # car: TP 1, FP 1 (the free voxel 2), FN 1 (voxel 1 -> road); voxel 5 does not count
    assert res['car_IoU'] == pytest.approx(100 / 3, abs=1e-3)
    assert res['driveable_surface_IoU'] == pytest.approx(50.0)  # TP 1, FP 1
    assert res['free_IoU'] == pytest.approx(50.0)  # in the matrix ...
    assert res['mIoU'] == pytest.approx((100 / 3 + 50) / 2, abs=1e-3)  # ... not in the mean
    assert math.isnan(res['bus_IoU'])  # absent from GT and prediction: skipped


def test_occ_rejects_out_of_range_prediction_and_missing_gt():
    s = occ_samples(1)[0]
    s['pred_occ'] = s['pred_occ'].astype(np.int64) + 18
    with pytest.raises(ValueError, match=r'\[0, 18\)'):
        Occ3DMetric().process({}, [s])
    with pytest.raises(KeyError, match='LoadOccGTFromFile'):
        Occ3DMetric().process({}, [dict(pred_occ=s['pred_occ'], eval_ann_info={})])


def test_map_perfect_and_crafted_case():
    gt = np.array([[[1, 1], [0, 0]], [[0, 1], [1, 0]]], np.uint8)
    perfect = _run(BEVMapSegMetric(classes=('a', 'b')),
                   [dict(pred_masks_bev=gt.astype(np.float64), eval_ann_info=dict(gt_masks_bev=gt))])
    assert perfect['mIoU'] == pytest.approx(100.0) and perfect['mean/iou@max'] == pytest.approx(1.0)
    scores = np.stack([np.array([[0.4, 0.6], [0.5, 0.1]]), gt.astype(np.float64)[1]])
    res = _run(BEVMapSegMetric(classes=('a', 'b')),
               [dict(pred_masks_bev=scores, eval_ann_info=dict(gt_masks_bev=gt))])
    # class a: t<=0.40 -> P={.4,.6,.5}: TP 2 FP 1 -> 2/3; t 0.45-0.50 -> 1/3; 0.55-0.60 -> 1/2; 0.65 -> 0
    expect = [2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 2, 1 / 2, 0.0]
    for t, e in zip((0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65), expect):
        assert res[f'a/iou@{t:.2f}'] == pytest.approx(e, abs=1e-6), t
    assert res['a/iou@max'] == pytest.approx(2 / 3, abs=1e-6)
    assert res['b/iou@max'] == pytest.approx(1.0, abs=1e-6)
    assert res['mean/iou@max'] == pytest.approx((2 / 3 + 1) / 2, abs=1e-6)
    assert res['mIoU'] == pytest.approx(100 * (2 / 3 + 1) / 2, abs=1e-4)


def test_metrics_are_registered():
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import METRICS
    assert isinstance(METRICS.build(dict(type='Occ3DMetric')), Occ3DMetric)
    assert isinstance(METRICS.build(dict(type='BEVMapSegMetric', classes=['walkway'])),
                      BEVMapSegMetric)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_gloo_equals_single_process(tmp_path):
    out = str(tmp_path / 'ddp.json')
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), OMP_NUM_THREADS='1')
        procs.append(subprocess.Popen([sys.executable, osp.join(HERE, 'metric_ddp_worker.py'), out],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = [p.communicate(timeout=120)[0] for p in procs]
    for rank, (p, o) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f'rank {rank} failed:\n{o[-3000:]}'
    with open(out) as f:
        ddp = json.load(f)
    single = {}
    single.update({f'occ/{k}': v for k, v in _run(Occ3DMetric(), occ_samples(5)).items()})
    single.update({f'map/{k}': v for k, v in _run(BEVMapSegMetric(), map_samples(5)).items()})
    assert set(ddp) == set(single)
    for k, v in single.items():
        if math.isnan(v):
            assert math.isnan(ddp[k]), k
        else:
            assert ddp[k] == pytest.approx(v, abs=1e-9), k
    # the padding duplicate (sample 0 on rank 1) was dropped: counting it changes the result
    padded = _run(Occ3DMetric(), occ_samples(5) + occ_samples(1))
    assert padded['mIoU'] != pytest.approx(single['occ/mIoU'], abs=1e-6)
