"""tools/summarize_ptqat.py builds the results table from run directories."""
import json

import pytest
from tool_loader import load_tool



def _write(d, name, obj):
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(json.dumps(obj))


def test_table(tmp_path, capsys):
    p = 'NuScenes metric/pred_instances_3d_NuScenes'
    _write(tmp_path / 'fp', 'metrics.json', {f'{p}/NDS': 0.41, f'{p}/mAP': 0.3})
    _write(tmp_path / 'ptqat', 'metrics.json', {f'{p}/NDS': 0.40, f'{p}/mAP': 0.29})
    _write(tmp_path / 'ptqat', 'resources.json', dict(params_trainable=500_000, params_total=1_666_000,
                                                      peak_rss_mb=900.4, sec_per_iter=0.5))
    _write(tmp_path / 'ptqat', 'discrepancy.json', dict(summary=dict(num_selected=25, num_layers=50)))
    load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'fp', 'ptqat'])
    table = (tmp_path / 'results.md').read_text().splitlines()
    assert table[2] == '| FP32 | 0.4100 | 0.3000 | – | – | – | – |'
    assert table[3] == ('| PTQAT (smallest-Dis half) | 0.4000 | 0.2900 | 25 / 50 | 0.500M / 1.666M '
                        '| 900 | 0.500 |')
    assert json.loads((tmp_path / 'results.json').read_text())[1]['layers_trainable'] == 25
    assert 'PTQAT' in capsys.readouterr().out


def test_missing_metrics(tmp_path):
    with pytest.raises(SystemExit, match=r'qat/metrics.json not found'):
        load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'qat'])


def test_occupancy_table_and_per_class(tmp_path):
    """Occ3DMetric results: an mIoU column instead of NDS / mAP, per-class IoU in its own file."""
    _write(tmp_path / 'fp', 'metrics.json', {'occ/mIoU': 12.5, 'occ/car_IoU': 30.0, 'occ/free_IoU': 80.0})
    _write(tmp_path / 'ptq', 'metrics.json', {'occ/mIoU': 7.25, 'occ/car_IoU': 20.0, 'occ/free_IoU': 75.5})
    load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'fp', 'ptq'])
    table = (tmp_path / 'results.md').read_text().splitlines()
    assert table[0].startswith('| method | mIoU | layers fine-tuned |')
    assert table[2] == '| FP32 | 12.50 | – | – | – | – |'
    assert table[3] == '| PTQ | 7.25 | – | – | – | – |'
    per_class = (tmp_path / 'per_class_iou.md').read_text().splitlines()
    assert per_class[0] == '| class | FP32 | PTQ |'
    assert per_class[2:] == ['| car | 30.00 | 20.00 |', '| free | 80.00 | 75.50 |',
                             '| **mIoU** | 12.50 | 7.25 |']
    assert json.loads((tmp_path / 'per_class_iou.json').read_text())['ptq'] == {
        'car': 20.0, 'free': 75.5}


def test_map_segmentation_per_class_in_percent(tmp_path):
    """BEVMapSegMetric gives fractions per class (best threshold): shown in %."""
    _write(tmp_path / 'fp', 'metrics.json', {
        'map/mIoU': 40.0, 'map/drivable_area/iou@max': 0.6, 'map/drivable_area/iou@0.35': 0.5,
        'map/divider/iou@max': 0.2, 'map/mean/iou@max': 0.4})
    load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'fp'])
    assert (tmp_path / 'results.md').read_text().splitlines()[2] == '| FP32 | 40.00 | – | – | – | – |'
    assert (tmp_path / 'per_class_iou.md').read_text().splitlines()[2:] == [
        '| drivable_area | 60.00 |', '| divider | 20.00 |', '| **mIoU** | 40.00 |']


def test_mixed_or_unknown_results_are_refused(tmp_path):
    p = 'NuScenes metric/pred_instances_3d_NuScenes'
    _write(tmp_path / 'fp', 'metrics.json', {f'{p}/NDS': 0.41, f'{p}/mAP': 0.3})
    _write(tmp_path / 'ptq', 'metrics.json', {'occ/mIoU': 7.0})
    with pytest.raises(SystemExit, match=r'ptq: occ metrics among det metrics'):
        load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'fp', 'ptq'])
    _write(tmp_path / 'qat', 'metrics.json', {'bbox/loss': 1.0})
    with pytest.raises(SystemExit, match=r"neither NDS nor occ/mIoU nor map/mIoU in metrics \['bbox/loss'\]"):
        load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'qat'])


def test_nds_breakdown_beside_a_detection_table(tmp_path, capsys):
    """With NuScenesMetric's per-class TP errors the breakdown is written; without, it says why."""
    import os.path as osp
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'evaluation'))
    from metric_samples import nuscenes_detection_metrics
    common = ['car', 'bus', 'pedestrian']
    _write(tmp_path / 'fp', 'metrics.json', nuscenes_detection_metrics(common + ['trailer']))
    _write(tmp_path / 'ptq', 'metrics.json', nuscenes_detection_metrics(common, seed=1))
    load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'fp', 'ptq'])
    text = (tmp_path / 'nds_breakdown.md').read_text()
    assert 'Common classes (above 10 % recall in all 2 runs): car, bus, pedestrian.' in text
    under = {line.split('|')[1].strip(): line.split('|')[9] for line in text.splitlines()
             if line.startswith(('| fp |', '| ptq |'))}
    assert 'trailer' not in under['fp'] and 'trailer' in under['ptq']
    capsys.readouterr()
    _write(tmp_path / 'bare', 'metrics.json', {'NuScenes metric/pred_instances_3d_NuScenes/NDS': 0.4,
                                               'NuScenes metric/pred_instances_3d_NuScenes/mAP': 0.3})
    load_tool('summarize_ptqat').main([str(tmp_path), '--variants', 'bare', '--out', str(tmp_path / 'b.md')])
    assert 'no NDS breakdown' in capsys.readouterr().out
