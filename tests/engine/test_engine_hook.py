"""PTQATHook with the real mmengine Runner on the toy detector: PTQAT, resume, PTQ via the test
path, the other strategies, the missing-checkpoint warning and argument validation."""
import csv
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

from mmdet3d.registry import HOOKS
from ptqat.checkpoint_compat import load_local_checkpoint
from ptqat.engine import CALIBRATED_CKPT, PTQATHook
from ptqat.quant import iter_quantizers, trainable_layers
from ptqat_toys import TOY_LAYERS, PTQATToyDataset, read_log, toy_cfg


def make_runner(work_dir, **kw):
    return Runner.from_cfg(Config(toy_cfg(str(work_dir), **kw)))


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def layer_keys(sd, layer):
    """The layer's own tensors: weight/bias and its quantizers' step sizes."""
    return [k for k in sd if k.startswith(layer + '.') and (k.endswith('weight') or k.endswith('bias')
                                                            or k.endswith('step_size'))]


def bn_keys(sd):
    return [k for k in sd if any(k.endswith(s) for s in ('running_mean', 'running_var'))]


def batch():
    ds = PTQATToyDataset(num_samples=8)
    return pseudo_collate([ds[i] for i in range(8)])


def predict(runner):
    with torch.no_grad():
        return torch.stack([d['pred'] for d in runner.model.test_step(batch())])


def n_calibrations(log):
    return log.count('PTQATHook: calibrated on')


@pytest.fixture(scope='module')
def ptqat_run(tmp_path_factory, fp_ckpt):
    """One PTQAT run (strategy small, ratio 0.5): calibrate, select, freeze, 4 iterations."""
    work = tmp_path_factory.mktemp('ptqat_run')
    runner = make_runner(work, load_from=fp_ckpt, hook=dict(strategy='small', ratio=0.5), max_iters=4)
    runner.train()
    before = torch.load(osp.join(work, CALIBRATED_CKPT))['state_dict']
    return dict(work=str(work), runner=runner, before=before, after=state(runner.model))


def test_ptqat_selects_half_with_smallest_discrepancy(ptqat_run):
    work = ptqat_run['work']
    doc = json.load(open(osp.join(work, 'discrepancy.json')))
    layers = doc['layers']
    assert [r['name'] for r in layers] == TOY_LAYERS  # network order
    assert all(r['type'] in ('QuantConv2d', 'QuantLinear') and r['params'] > 0 for r in layers)
    selected = [r['name'] for r in layers if r['selected']]
    assert len(selected) == 3
    dis = {r['name']: r['dis'] for r in layers}
    assert max(dis[n] for n in selected) < min(dis[n] for n in TOY_LAYERS if n not in selected)
    assert sorted(r['rank'] for r in layers) == list(range(1, 7))
    assert doc['settings']['strategy'] == 'small' and doc['settings']['ratio'] == 0.5
    assert doc['settings']['quantization']['w_bits'] == 4 and doc['settings']['calib_batches_used'] == 2
    theta = doc['summary']['effective_threshold']
    assert max(dis[n] for n in selected) < theta < min(dis[n] for n in TOY_LAYERS if n not in selected)
    rows = list(csv.DictReader(open(osp.join(work, 'discrepancy.csv'))))
    assert [r['name'] for r in rows] == TOY_LAYERS
    assert [float(r['dis']) for r in rows] == [dis[n] for n in TOY_LAYERS]
    assert [r['selected'] == 'True' for r in rows] == [r['selected'] for r in layers]
    with open(osp.join(work, 'discrepancy.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # the selection is in the model (ptqat_trainable buffers) and in the checkpoints
    assert trainable_layers(ptqat_run['runner'].model) == selected
    log = read_log(work)
    for text in ('PTQAT summary', 'layers quantized', 'layers fine-tuned', 'layers frozen', 'parameters total',
                 'parameters trainable', 'parameters frozen', 'wrote', 'discrepancy.png'):
        assert text in log, text
    assert 'NO CHECKPOINT WAS LOADED' not in log


def test_ptqat_trains_only_the_selected_layers(ptqat_run):
    before, after = ptqat_run['before'], ptqat_run['after']
    selected = trainable_layers(ptqat_run['runner'].model)
    for layer in TOY_LAYERS:
        keys = layer_keys(after, layer)
        assert any(k.endswith('weight_quantizer.step_size') for k in keys)
        changed = [k for k in keys if not torch.equal(before[k], after[k])]
        if layer in selected:
            assert any(k.endswith('.weight') for k in changed), layer
            assert any(k.endswith('step_size') for k in changed), layer
        else:
            assert changed == [], (layer, changed)
    # everything outside the selected layers is exactly as calibrated: BN affine and statistics
    outside = [k for k in after if not any(k.startswith(s + '.') for s in selected)]
    assert bn_keys(after)
    for k in outside:
        assert torch.equal(before[k], after[k]), k
    # and the FP weights of the frozen layers are still those of the float checkpoint
    assert all(q.is_initialized for _, q in iter_quantizers(ptqat_run['runner'].model))


def test_resume_and_test_use_the_checkpoint_without_recalibrating(ptqat_run, tmp_path):
    ckpt = osp.join(ptqat_run['work'], 'iter_4.pth')
    expected = predict(ptqat_run['runner'])
    # test: a freshly built PTQAT model + the PTQAT checkpoint
    tester = make_runner(tmp_path / 'test', load_from=ckpt, hook=dict(strategy='small', ratio=0.5))
    metrics = tester.test()
    assert 'toy/mse' in metrics
    assert torch.equal(predict(tester), expected)
    log = read_log(tmp_path / 'test')
    assert n_calibrations(log) == 0 and 'calibrating before test' not in log
    # resume: the saved selection is re-applied, training continues on the same layers only
    resumed = make_runner(tmp_path / 'resume', load_from=ckpt, resume=True, max_iters=6,
                          hook=dict(strategy='small', ratio=0.5))
    resumed.train()
    log = read_log(tmp_path / 'resume')
    assert n_calibrations(log) == 0 and 'no recalibration' in log and 'PTQAT summary (resumed)' in log
    assert resumed.iter == 6
    selected = trainable_layers(ptqat_run['runner'].model)
    assert trainable_layers(resumed.model) == selected
    after = state(resumed.model)
    for k, v in ptqat_run['after'].items():
        if not any(k.startswith(s + '.') for s in selected):
            assert torch.equal(v, after[k]), k
    assert not torch.equal(after['head.weight'], ptqat_run['after']['head.weight'])


def test_ptq_through_the_test_path(tmp_path, fp_ckpt):
    """tools/test.py on a PTQ config with the FP checkpoint: before_test calibrates."""
    runner = make_runner(tmp_path, load_from=fp_ckpt, hook=dict(strategy='none'))
    metrics = runner.test()
    assert metrics['toy/mse'] > 0
    assert all(q.is_initialized for _, q in iter_quantizers(runner.model))
    log = read_log(tmp_path)
    assert 'calibrating before test' in log and 'evaluates the PTQ model' in log
    # the quantized predictions are close to but not equal to the float ones
    fp = make_runner(tmp_path / 'fp', load_from=fp_ckpt, quantize=False)
    fp.load_or_resume()
    q, f = predict(runner), predict(fp)
    assert not torch.equal(q, f) and torch.allclose(q, f, atol=0.5)
    # val path too
    runner2 = make_runner(tmp_path / 'val', load_from=fp_ckpt, hook=dict(strategy='none'))
    runner2.val()
    assert torch.equal(predict(runner2), q)  # same calibration data, same step sizes


def test_strategy_none_trains_nothing(tmp_path, fp_ckpt):
    runner = make_runner(tmp_path, load_from=fp_ckpt, hook=dict(strategy='none'), max_iters=4)
    runner.train()
    assert runner.iter == 0 and not osp.exists(tmp_path / 'iter_4.pth')
    assert trainable_layers(runner.model) == []
    assert not any(p.requires_grad for p in runner.model.parameters())
    assert 'nothing to fine-tune (PTQ)' in read_log(tmp_path)
    assert osp.isfile(tmp_path / 'discrepancy.json')
    # the saved PTQ checkpoint evaluates without recalibration and gives the same predictions
    tester = make_runner(tmp_path / 'test', load_from=str(tmp_path / CALIBRATED_CKPT), hook=dict(strategy='none'))
    tester.test()
    assert 'calibrating before test' not in read_log(tmp_path / 'test')
    assert torch.equal(predict(tester), predict(runner))
    # ... and starts a PTQAT run: its step sizes are kept, the layers are ranked and selected now
    ptq = state(runner.model)
    ptqat = make_runner(tmp_path / 'ptqat', load_from=str(tmp_path / CALIBRATED_CKPT),
                        hook=dict(strategy='small', ratio=0.5), max_iters=2)
    ptqat.train()
    log = read_log(tmp_path / 'ptqat')
    assert n_calibrations(log) == 0 and "selected by the config (strategy='small')" in log and ptqat.iter == 2
    selected = trainable_layers(ptqat.model)
    assert len(selected) == 3
    after = state(ptqat.model)
    for layer in TOY_LAYERS:
        step = f'{layer}.weight_quantizer.step_size'
        assert torch.equal(ptq[step], after[step]) == (layer not in selected), layer


def _stored_selection(path):
    sd = load_local_checkpoint(path)['state_dict']
    return sorted(k[:-len('.ptqat_trainable')] for k, v in sd.items() if k.endswith('ptqat_trainable') and bool(v))


def test_calibrated_checkpoint_holds_no_selection(ptqat_run):
    """ptq_calibrated.pth is the PTQ state: its step sizes, but no layer selected."""
    assert trainable_layers(ptqat_run['runner'].model)  # the run itself did select layers
    assert _stored_selection(osp.join(ptqat_run['work'], CALIBRATED_CKPT)) == []
    assert len(_stored_selection(osp.join(ptqat_run['work'], 'iter_4.pth'))) == 3


@pytest.mark.parametrize('hook, expected', [
    (dict(strategy='none'), []),                                      # PTQ: nothing trains
    (dict(strategy='all', train_unquantized=True), TOY_LAYERS),       # QAT: every layer
    (dict(strategy='large', ratio=0.5), 'large'),                     # another PTQAT selection
])
def test_config_decides_what_trains_from_a_ptqat_checkpoint(ptqat_run, tmp_path, hook, expected):
    """load_from a PTQAT checkpoint (3 layers selected by 'small'): the loading config selects."""
    ckpt = osp.join(ptqat_run['work'], 'iter_4.pth')
    stored = trainable_layers(ptqat_run['runner'].model)
    runner = make_runner(tmp_path, load_from=ckpt, hook=hook, max_iters=1)
    runner.train()
    log = read_log(tmp_path)
    assert n_calibrations(log) == 0
    if expected == 'large':
        doc = json.load(open(osp.join(tmp_path, 'discrepancy.json')))
        dis = {r['name']: r['dis'] for r in doc['layers']}
        expected = [n for n in TOY_LAYERS if n in sorted(dis, key=dis.get)[3:]]
    assert trainable_layers(runner.model) == expected
    trainable = {n for n, p in runner.model.named_parameters() if p.requires_grad}
    for layer in TOY_LAYERS:
        assert (f'{layer}.weight' in trainable) == (layer in expected), layer
    assert ('stores a selection of 3 layer(s)' in log) == (expected != stored)
    assert runner.iter == (0 if expected == [] else 1)


def test_reuse_selection_keeps_the_stored_one(ptqat_run, tmp_path):
    ckpt = osp.join(ptqat_run['work'], 'iter_4.pth')
    runner = make_runner(tmp_path, load_from=ckpt, hook=dict(strategy='all', reuse_selection=True), max_iters=1)
    runner.train()
    assert trainable_layers(runner.model) == trainable_layers(ptqat_run['runner'].model)
    assert 'reuse_selection=True: re-applied its stored selection of 3 layer(s)' in read_log(tmp_path)


def test_strategy_all_is_full_qat(tmp_path, fp_ckpt):
    runner = make_runner(tmp_path, load_from=fp_ckpt, hook=dict(strategy='all', train_unquantized=True), max_iters=3)
    runner.train()
    before = torch.load(osp.join(tmp_path, CALIBRATED_CKPT))['state_dict']
    after = state(runner.model)
    assert trainable_layers(runner.model) == TOY_LAYERS
    for layer in TOY_LAYERS:
        assert not torch.equal(before[f'{layer}.weight'], after[f'{layer}.weight']), layer
    # norms train and their statistics update
    assert not torch.equal(before['stem.1.weight'], after['stem.1.weight'])
    assert not torch.equal(before['stem.1.running_mean'], after['stem.1.running_mean'])


@pytest.mark.parametrize('keep', [True, False])
def test_parameters_frozen_by_the_float_model_stay_frozen(tmp_path, fp_ckpt, keep):
    """A stem the float model froze (as a ResNet's frozen_stages) is not trained by full QAT
    (strategy all + train_unquantized), except its quantizers' step sizes; with
    keep_float_frozen=False it trains like every other layer (the behaviour before the fix)."""
    from ptqat_toys import FP_MODEL
    cfg = Config(toy_cfg(str(tmp_path), load_from=fp_ckpt, max_iters=3,
                         hook=dict(strategy='all', train_unquantized=True, keep_float_frozen=keep)))
    cfg.model.model = dict(FP_MODEL, frozen_stem=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    before = torch.load(osp.join(tmp_path, CALIBRATED_CKPT))['state_dict']
    after = state(runner.model)
    stem_float = ['stem.0.weight', 'stem.1.weight', 'stem.1.bias']
    changed = {k: not torch.equal(before[k], after[k]) for k in stem_float}
    assert changed == {k: not keep for k in stem_float}
    assert not torch.equal(before['layer1.0.weight'], after['layer1.0.weight'])  # the rest trains
    step = 'stem.0.weight_quantizer.step_size'
    assert not torch.equal(before[step], after[step])  # step sizes are quantization's own: they train
    assert trainable_layers(runner.model) == TOY_LAYERS
    log = read_log(tmp_path)
    assert ('3 parameter(s) frozen by the float model stay frozen' in log) == keep
    grads = {n: p.requires_grad for n, p in runner.model.named_parameters()}
    assert [grads[n] for n in grads if n.endswith('stem.0.weight')] == [not keep]


def test_strategy_large_and_bn_stats_option(tmp_path, fp_ckpt):
    runner = make_runner(tmp_path, load_from=fp_ckpt, hook=dict(strategy='large', ratio=0.5, freeze_bn_stats=False),
                         max_iters=2)
    runner.train()
    doc = json.load(open(osp.join(tmp_path, 'discrepancy.json')))
    dis = {r['name']: r['dis'] for r in doc['layers']}
    selected = [r['name'] for r in doc['layers'] if r['selected']]
    assert len(selected) == 3 and trainable_layers(runner.model) == selected
    assert min(dis[n] for n in selected) > max(dis[n] for n in TOY_LAYERS if n not in selected)
    # freeze_bn_stats=False: the (frozen-affine) BN layers still update their statistics
    before = torch.load(osp.join(tmp_path, CALIBRATED_CKPT))['state_dict']
    assert not torch.equal(before['stem.1.running_mean'], runner.model.state_dict()['stem.1.running_mean'])


def test_threshold_selection(tmp_path, fp_ckpt):
    runner = make_runner(tmp_path, load_from=fp_ckpt, hook=dict(strategy='small', threshold=0.05, calib_batches=2),
                         max_iters=1)
    runner.train()
    doc = json.load(open(osp.join(tmp_path, 'discrepancy.json')))
    assert doc['summary']['effective_threshold'] == 0.05
    assert [r['name'] for r in doc['layers'] if r['selected']] == [r['name'] for r in doc['layers']
                                                                   if r['dis'] < 0.05]


def test_missing_load_from_warns_loudly(tmp_path):
    runner = make_runner(tmp_path, load_from=None, hook=dict(strategy='none'))
    runner.train()
    log = read_log(tmp_path)
    assert 'WARNING' in log and 'NO CHECKPOINT WAS LOADED' in log and 'RANDOMLY INITIALISED' in log
    runner = make_runner(tmp_path / 'test', load_from=None, hook=dict(strategy='none'))
    runner.test()
    assert 'NO CHECKPOINT WAS LOADED' in read_log(tmp_path / 'test')


def test_hook_needs_a_quantized_model(tmp_path, fp_ckpt):
    runner = make_runner(tmp_path, load_from=fp_ckpt, hook=dict(strategy='small'), quantize=False)
    with pytest.raises(RuntimeError, match="type='PTQATModel'"):
        runner.train()


@pytest.mark.parametrize('kwargs, match', [
    (dict(strategy='smallest'), r"unknown strategy 'smallest'; allowed: small, large, random, all, none"),
    (dict(metric='l1'), r"unknown metric 'l1'; allowed: l2, rms, mse, relative, cosine"),
    (dict(mode='global'), r"unknown mode 'global'; allowed: local, cumulative"),
    (dict(ratio=0.0), r'ratio must be in \(0, 1\], got 0.0'),
    (dict(ratio=1.5), r'ratio must be in \(0, 1\], got 1.5'),
    (dict(ratio='half'), r"ratio must be a number or None, got 'half'"),
    (dict(calib_batches=0), r'calib_batches must be an integer >= 1, got 0'),
    (dict(calib_batches=2.5), r'calib_batches must be an integer >= 1, got 2.5'),
    (dict(strategy='all', ratio=0.5), r"strategy 'all' takes no ratio/threshold"),
    (dict(strategy='small', ratio=0.5, threshold=0.1), r'takes a ratio OR a threshold'),
    (dict(strategy='random', threshold=0.1), r"strategy 'random' takes a ratio, not a threshold"),
    (dict(forward_mode='loss'), r"unknown forward_mode 'loss'; allowed: tensor, predict"),
    (dict(freeze_bn_stats='yes'), r"freeze_bn_stats must be True or False, got 'yes'"),
    (dict(reuse_selection=1), r'reuse_selection must be True or False, got 1'),
    (dict(out_prefix='a/b'), r'out_prefix must be a plain file name prefix'),
])
def test_bad_hook_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PTQATHook(**kwargs)
    with pytest.raises(ValueError, match=match):  # also when built from a config
        HOOKS.build(dict(type='PTQATHook', **kwargs))


def test_hook_defaults():
    hook = PTQATHook()
    assert (hook.settings.strategy, hook.settings.ratio, hook.settings.metric, hook.settings.mode,
            hook.settings.calib_batches) == ('small', 0.5, 'l2', 'local', 32)
    assert PTQATHook(strategy='none').settings.ratio is None
    assert PTQATHook(strategy='small', threshold=1e-3).settings.ratio is None
