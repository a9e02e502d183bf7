"""PTQATHook / analyze_discrepancy with threshold='auto' (issue 16): the knee or a parameter
budget picks θ from the measured curve, through the real Runner on the toy detector."""
import json
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmdet3d.registry import HOOKS
from ptqat.engine import PTQATHook
from ptqat.quant import auto_threshold, layer_param_counts, trainable_layers
from ptqat_toys import read_log, toy_cfg
from tool_loader import load_tool


@pytest.mark.parametrize('hook, rule', [
    (dict(threshold='auto'), 'knee'),
    (dict(threshold='auto', auto_rule='knee-log'), 'knee-log'),
    (dict(threshold='auto', param_budget=0.4), 'budget'),
])
def test_hook_auto_threshold(tmp_path, fp_ckpt, hook, rule):
    runner = Runner.from_cfg(Config(toy_cfg(str(tmp_path), load_from=fp_ckpt, max_iters=1,
                                            hook=dict(strategy='small', **hook))))
    runner.train()
    doc = json.load(open(osp.join(tmp_path, 'discrepancy.json')))
    assert doc['settings']['threshold'] == 'auto' and doc['settings']['auto_rule'] == rule
    dis = {r['name']: r['dis'] for r in doc['layers'] if r['dis'] is not None}
    params = layer_param_counts(runner.model)
    theta = auto_threshold(dis, 'small', rule, param_budget=hook.get('param_budget'),
                           params=params if rule == 'budget' else None)
    selected = [r['name'] for r in doc['layers'] if r['selected']]
    assert selected == [n for n, v in dis.items() if v < theta] and selected
    assert trainable_layers(runner.model) == selected
    assert doc['summary']['effective_threshold'] == pytest.approx(theta)
    if rule == 'budget':
        assert sum(params[n] for n in selected) <= 0.4 * sum(params.values())
    assert "threshold='auto'" in read_log(tmp_path)


@pytest.mark.parametrize('kwargs, match', [
    (dict(threshold='knee'), r"threshold must be a number >= 0 or 'auto', got 'knee'"),
    (dict(threshold='auto', strategy='random'), r"threshold='auto' needs strategy 'small' or 'large', got 'random'"),
    (dict(threshold='auto', ratio=0.5), r"takes a ratio OR a threshold"),
    (dict(threshold='auto', auto_rule='elbow'), r"unknown auto_rule 'elbow'; allowed: knee, knee-log, budget"),
    (dict(threshold='auto', auto_rule='budget'), r"auto_rule='budget' needs param_budget"),
    (dict(threshold='auto', auto_rule='knee', param_budget=100),
     r"param_budget=100 is only used by auto_rule='budget'"),
    (dict(threshold='auto', param_budget=0), r'param_budget must be >= 1 parameter'),
    (dict(threshold='auto', param_budget=2.5), r'param_budget as a share must be in \(0, 1\)'),
    (dict(ratio=0.5, param_budget=100), r"param_budget=100 need threshold='auto', got threshold=None"),
    (dict(threshold=0.1, auto_rule='knee'), r"auto_rule='knee' / param_budget=None need threshold='auto'"),
])
def test_bad_auto_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PTQATHook(**kwargs)
    with pytest.raises(ValueError, match=match):
        HOOKS.build(dict(type='PTQATHook', **kwargs))


def test_analyze_tool_threshold_auto(tmp_path, fp_ckpt, capsys, monkeypatch):
    import test_engine_analyze_tool as t
    config = t.config.__wrapped__(tmp_path, monkeypatch)
    tool = load_tool('analyze_discrepancy')
    out = tmp_path / 'out'
    result = tool.main([config, fp_ckpt, '--calib-batches', '2', '--threshold', 'auto', '--param-budget', '0.5',
                        '--out-dir', str(out), '--work-dir', str(tmp_path / 'work')])
    printed = capsys.readouterr().out
    assert "threshold='auto' (budget)" in printed and 'effective threshold θ' in printed
    assert result.settings.auto_rule == 'budget' and result.settings.param_budget == 0.5
    doc = json.load(open(out / 'discrepancy.json'))
    assert doc['settings']['threshold'] == 'auto'
    with pytest.raises(SystemExit):  # argparse: not a number nor 'auto'
        tool.main([config, fp_ckpt, '--threshold', 'knee'])
    assert "a number >= 0 or 'auto', got 'knee'" in capsys.readouterr().err
