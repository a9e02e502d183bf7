"""PTQATHook / analyze_discrepancy: ratio_by='params' and metric='rms' (issue 9 item 7)."""
import json
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmdet3d.registry import HOOKS
from ptqat.engine import PTQATHook
from ptqat.quant import layer_param_counts, trainable_layers
from ptqat_toys import TOY_LAYERS, read_log, toy_cfg
from tool_loader import load_tool


def _params_share(doc, selected):
    total = sum(r['params'] for r in doc['layers'])
    return sum(r['params'] for r in doc['layers'] if r['name'] in selected) / total


def test_hook_ratio_by_params_and_rms(tmp_path, fp_ckpt):
    runner = Runner.from_cfg(Config(toy_cfg(str(tmp_path), load_from=fp_ckpt, max_iters=1,
                                            hook=dict(strategy='small', ratio=0.5, ratio_by='params',
                                                      metric='rms'))))
    runner.train()
    doc = json.load(open(osp.join(tmp_path, 'discrepancy.json')))
    assert doc['settings']['ratio_by'] == 'params' and doc['settings']['metric'] == 'rms'
    counts = layer_param_counts(runner.model)
    assert [r['params'] for r in doc['layers']] == [counts[n] for n in TOY_LAYERS]
    assert all(r['out_numel'] and r['out_shape'] for r in doc['layers'] if r['dis'] is not None)
    selected = [r['name'] for r in doc['layers'] if r['selected']]
    assert trainable_layers(runner.model) == selected
    # the selection is the prefix of the ranking whose parameter share is closest to 1/2
    ranked = sorted((r for r in doc['layers'] if r['dis'] is not None), key=lambda r: r['rank'])
    total = sum(r['params'] for r in ranked)
    shares = [sum(r['params'] for r in ranked[:k]) / total for k in range(1, len(ranked) + 1)]
    best = min(range(len(shares)), key=lambda k: abs(shares[k] - 0.5))
    assert sorted(selected) == sorted(r['name'] for r in ranked[:best + 1])
    log = read_log(tmp_path)
    assert 'ratio=0.5 of the parameters' in log and 'output/sample' in log


@pytest.mark.parametrize('kwargs, match', [
    (dict(ratio_by='weights'), r"unknown ratio_by 'weights'; allowed: layers, params"),
    (dict(ratio_by='params', threshold=0.1), r"ratio_by='params' needs a ratio; strategy='small' with threshold=0.1"),
    (dict(ratio_by='params', strategy='all'), r"ratio_by='params' needs a ratio; strategy='all'"),
])
def test_bad_ratio_by(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PTQATHook(**kwargs)
    with pytest.raises(ValueError, match=match):
        HOOKS.build(dict(type='PTQATHook', **kwargs))


def test_analyze_tool_ratio_by_params(tmp_path, fp_ckpt, capsys, monkeypatch):
    import test_engine_analyze_tool as t
    config = t.config.__wrapped__(tmp_path, monkeypatch)
    tool = load_tool('analyze_discrepancy')
    out = tmp_path / 'out'
    result = tool.main([config, fp_ckpt, '--calib-batches', '2', '--metric', 'rms', '--ratio', '0.5',
                        '--ratio-by', 'params', '--out-dir', str(out), '--work-dir', str(tmp_path / 'work')])
    printed = capsys.readouterr().out
    assert 'ratio=0.5 of the parameters' in printed and 'output/sample' in printed
    doc = json.load(open(out / 'discrepancy.json'))
    assert doc['settings']['ratio_by'] == 'params' and doc['settings']['metric'] == 'rms'
    assert result.settings.ratio_by == 'params'
    with pytest.raises(SystemExit, match="ratio_by='params' needs a ratio"):
        tool.main([config, fp_ckpt, '--threshold', '0.1', '--ratio-by', 'params', '--work-dir',
                   str(tmp_path / 'work')])
    with pytest.raises(SystemExit):  # argparse: invalid choice
        tool.main([config, fp_ckpt, '--ratio-by', 'weights'])
    assert 'invalid choice' in capsys.readouterr().err
