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
