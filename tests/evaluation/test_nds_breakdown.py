"""ptqat.evaluation.nds_breakdown and tools/nds_breakdown.py, against nuscenes-devkit's own NDS
(``DetectionMetrics``, the class the devkit's evaluation fills) on crafted per-class results."""
import json
import math
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from metric_samples import NUSCENES_PREFIX, nuscenes_detection_metrics  # noqa: E402
from tool_loader import load_tool  # noqa: E402

from ptqat.evaluation.nds_breakdown import (  # noqa: E402
    DETECTION_CLASSES, common_class_nds, common_classes, find_prefix, nd_score, parse_metrics)

ALL_BUT_RARE = [c for c in DETECTION_CLASSES if c not in ('trailer', 'motorcycle', 'bicycle')]


def test_recomputes_the_devkits_nds_and_finds_the_penalised_classes():
    for seed, detected in enumerate([DETECTION_CLASSES, ALL_BUT_RARE, ['car', 'traffic_cone']]):
        metrics = nuscenes_detection_metrics(detected, seed=seed)
        b = parse_metrics(metrics)
        assert b.nds == metrics[NUSCENES_PREFIX + 'NDS']
        assert b.recomputed_nds == pytest.approx(b.nds, abs=2e-4)  # inputs rounded to 4 decimals
        assert b.below_min_recall == tuple(c for c in DETECTION_CLASSES if c not in detected)
        assert b.mean_tp['mATE'] == metrics[NUSCENES_PREFIX + 'mATE']
        assert math.isnan(b.class_tp['traffic_cone']['orient_err'])


def test_a_class_crossing_the_recall_threshold_moves_nds_not_the_common_class_nds():
    # same errors everywhere; run b also detects the trailer, with AP 0 at every distance but
    # its TP errors measured (recall just past 10 %), as a weak model's rare class does
    a = nuscenes_detection_metrics(ALL_BUT_RARE, seed=0, tp_error=0.3)
    b = nuscenes_detection_metrics(ALL_BUT_RARE + ['trailer'], seed=0, tp_error=0.3,
                                   ap_classes=ALL_BUT_RARE)
    runs = [parse_metrics(a), parse_metrics(b)]
    assert runs[1].mean_ap == runs[0].mean_ap  # only the TP errors differ
    assert runs[1].nds - runs[0].nds > 0.03  # one class: +0.03 NDS or more
    classes, scores = common_class_nds(runs)
    assert classes == tuple(ALL_BUT_RARE)
    assert scores[0] == pytest.approx(scores[1], abs=1e-9)
    # over the detected classes only, the mean errors are 0.3 (NaNs skipped): 5 mAP + 5 x 0.7
    assert scores[0] == pytest.approx((5 * runs[0].mean_ap + 5 * 0.7) / 10, abs=1e-9)


def test_undefined_errors_are_left_out_when_no_common_class_has_them():
    only_cone = parse_metrics(nuscenes_detection_metrics(['traffic_cone'], seed=3, tp_error=0.2))
    classes, [score] = common_class_nds([only_cone])
    assert classes == ('traffic_cone', )
    assert score == pytest.approx((5 * only_cone.mean_ap + 2 * 0.8) / 7, abs=1e-9)  # ATE, ASE only


def test_empty_prediction_set_counts_every_class_as_below_the_threshold():
    # what EmptySafeNuScenesMetric returns for a set without boxes: no per-class TP errors
    prefix = NUSCENES_PREFIX
    metrics = {f'{prefix}{c}_AP_dist_{d}': 0.0 for c in DETECTION_CLASSES for d in (0.5, 1.0, 2.0, 4.0)}
    metrics.update({prefix + m: 1.0 for m in ('mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE')})
    metrics.update({prefix + 'NDS': 0.0, prefix + 'mAP': 0.0})
    b = parse_metrics(metrics)
    assert b.below_min_recall == DETECTION_CLASSES and b.recomputed_nds == 0.0
    assert common_classes([b, parse_metrics(nuscenes_detection_metrics(['car']))]) == ()


def test_bad_metrics_are_refused_with_what_is_wrong():
    good = nuscenes_detection_metrics(ALL_BUT_RARE)
    with pytest.raises(ValueError, match='no NDS'):
        parse_metrics({'occ/mIoU': 12.0})
    with pytest.raises(ValueError, match='several NDS'):
        find_prefix({**good, 'other/NDS': 0.1})
    assert find_prefix({'NDS': 0.1}) == ''
    missing = {k: v for k, v in good.items() if not k.endswith('bus_vel_err')}
    with pytest.raises(ValueError, match='bus_vel_err'):
        parse_metrics(missing)
    with pytest.raises(ValueError, match='reported 0.9000|report 0.9000'):
        parse_metrics({**good, NUSCENES_PREFIX + 'NDS': 0.9})
    with pytest.raises(ValueError, match='no class reaches'):
        common_class_nds([parse_metrics(nuscenes_detection_metrics(['car'])),
                          parse_metrics(nuscenes_detection_metrics(['bus']))])
    with pytest.raises(ValueError, match='at least one'):
        common_class_nds([])


def test_nd_score_is_the_devkit_formula():
    assert nd_score(0.5, {'mATE': 0.2, 'mASE': 1.5}) == pytest.approx((2.5 + 0.8 + 0.0) / 7)


def test_tool_tables_groups_and_refuses_to_overwrite(tmp_path, capsys):
    tool = load_tool('nds_breakdown')
    paths = []
    for i, detected in enumerate([ALL_BUT_RARE, ALL_BUT_RARE + ['trailer'], ALL_BUT_RARE]):
        path = tmp_path / f'run{i}.json'
        path.write_text(json.dumps(nuscenes_detection_metrics(detected, seed=i)))
        paths.append(str(path))
    out = tmp_path / 'report.md'
    assert tool.main([f'qat={paths[0]}', f'qat={paths[1]}', f'ptq={paths[2]}', '--out', str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith('| qat |')]
    assert len(rows) == 3  # two runs + the group row
    assert '| qat | 2 |' in text and '| ptq | 1 |' in text
    assert 'trailer, motorcycle, bicycle' in text and '| motorcycle, bicycle |' in text
    with pytest.raises(SystemExit, match='exists'):
        tool.main([paths[0], '--out', str(out)])
    with pytest.raises(SystemExit, match='no such metrics file'):
        tool.main([str(tmp_path / 'missing.json')])
    (tmp_path / 'occ.json').write_text(json.dumps({'occ/mIoU': 10.0}))
    with pytest.raises(SystemExit, match='occ.json: no NDS'):
        tool.main([str(tmp_path / 'occ.json')])
    with pytest.raises(SystemExit, match='LABEL=PATH'):
        tool.main([f'={paths[0]}'])
