"""Checkpoints that do not fit the model are refused (issue 10, items 2 and 3), with the real
Runner on the toy detector and with the committed BEVDepth4D-tiny checkpoint under a BEVDet-tiny
PTQAT config."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmdet3d.registry import MODELS
from ptqat.checkpoint_compat import load_local_checkpoint
from ptqat.engine import CheckpointMismatchError, check_checkpoint
from ptqat.quant import iter_quantizers
from ptqat_toys import read_log, toy_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def make_runner(work_dir, **kw):
    return Runner.from_cfg(Config(toy_cfg(str(work_dir), **kw)))


@pytest.fixture(scope='module')
def w4a8_ckpt(tmp_path_factory, fp_ckpt):
    """A PTQAT (W4A8) checkpoint of the toy detector, written by the Runner."""
    work = tmp_path_factory.mktemp('w4a8')
    make_runner(work, load_from=fp_ckpt, hook=dict(strategy='small', ratio=0.5), max_iters=2).train()
    return str(work / 'iter_2.pth')


def test_checkpoint_records_the_bit_widths(w4a8_ckpt):
    record = load_local_checkpoint(w4a8_ckpt)['meta']['ptqat']
    assert record['layers'] == {n: 'W4A8' for n in ('stem.0', 'layer1.0', 'layer1.3', 'layer2.0', 'neck', 'head')}
    assert record['quantization']['w_bits'] == 4 and record['quantization']['a_bits'] == 8
    calibrated = load_local_checkpoint(osp.join(osp.dirname(w4a8_ckpt), 'ptq_calibrated.pth'))
    assert calibrated['meta']['ptqat']['layers'] == record['layers']


def test_w4a8_checkpoint_under_w8a8_config_is_refused(w4a8_ckpt, tmp_path):
    runner = make_runner(tmp_path, load_from=w4a8_ckpt, hook=dict(strategy='none'),
                         quantization=dict(w_bits=8, a_bits=8))
    with pytest.raises(CheckpointMismatchError, match=rf'checkpoint {w4a8_ckpt} was quantized as W4A8 x6, this '
                                                      r'config quantizes W8A8 x6; 6 layer\(s\) differ'):
        runner.test()


def test_quantization_mismatch_converts_with_the_flag(w4a8_ckpt, tmp_path):
    """accept_quantization_mismatch: the float weights are loaded, the quantizers recalibrated."""
    runner = make_runner(tmp_path, load_from=w4a8_ckpt, hook=dict(strategy='none'),
                         quantization=dict(w_bits=8, a_bits=8),
                         checkpoint_check=dict(accept_quantization_mismatch=True))
    runner.test()
    log = read_log(tmp_path)
    assert 'accept_quantization_mismatch: dropped its' in log and 'calibrating before test' in log
    sd = load_local_checkpoint(w4a8_ckpt)['state_dict']
    assert torch.equal(runner.model.head.weight, sd['head.weight'])
    assert all(q.is_initialized for _, q in iter_quantizers(runner.model))


def test_ptqat_checkpoint_under_float_config_is_refused(w4a8_ckpt, tmp_path):
    runner = make_runner(tmp_path, load_from=w4a8_ckpt, quantize=False, custom_hooks=[dict(type='CheckpointCheckHook')])
    with pytest.raises(CheckpointMismatchError, match=rf"checkpoint {w4a8_ckpt} is a quantized .*\(W4A8 x6\) but "
                                                      "this config's model is not quantized"):
        runner.test()
    runner = make_runner(tmp_path / 'ok', load_from=w4a8_ckpt, quantize=False,
                         custom_hooks=[dict(type='CheckpointCheckHook')],
                         checkpoint_check=dict(accept_quantization_mismatch=True))
    runner.test()
    assert 'dropped its 30 quantizer tensors' in read_log(tmp_path / 'ok')


def test_foreign_state_dict_is_refused(tmp_path, fp_ckpt):
    foo = str(tmp_path / 'foo.pth')
    torch.save({'foo': torch.zeros(3)}, foo)
    runner = make_runner(tmp_path / 'run', load_from=foo, hook=dict(strategy='small'), max_iters=1)
    with pytest.raises(CheckpointMismatchError, match=rf'checkpoint {foo} does not fit the model: of its 28 float '
                                                      r"tensors, 28 are missing \['head.bias', 'head.weight', .*"
                                                      r'and 0 have another shape'):
        runner.train()
    # a float checkpoint with one tensor of the wrong shape
    sd = torch.load(fp_ckpt, weights_only=True)
    sd['state_dict']['head.weight'] = torch.zeros(5, 16)
    bad = str(tmp_path / 'bad_shape.pth')
    torch.save(sd, bad)
    with pytest.raises(CheckpointMismatchError, match=r"0 are missing \[\] and 1 have another shape "
                                                      r"\['head.weight: checkpoint \[5, 16\] vs model \[4, 16\]'\]"):
        make_runner(tmp_path / 'run2', load_from=bad, hook=dict(strategy='small'), max_iters=1).train()
    # the explicit switch allows a partial load
    runner = make_runner(tmp_path / 'partial', load_from=foo, hook=dict(strategy='none'), max_iters=1,
                         checkpoint_check=dict(allow_partial=True))
    runner.train()
    assert 'allow_partial: the float weights were not checked' in read_log(tmp_path / 'partial')


def test_bad_checkpoint_check_option(tmp_path, fp_ckpt):
    runner = make_runner(tmp_path, load_from=fp_ckpt, hook=dict(strategy='none'), checkpoint_check=dict(partial=True))
    with pytest.raises(ValueError, match=r"checkpoint_check: unknown key\(s\) \['partial'\]; allowed: "
                                         r"\['accept_quantization_mismatch', 'allow_partial'\]"):
        runner.test()


def _build_model(config: str):
    """The model of a repository config (path relative to the repository root)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        return MODELS.build(cfg.model)


def test_bevdepth4d_checkpoint_into_bevdet_ptqat_config():
    """The committed BEVDepth4D-tiny FP checkpoint does not fit BEVDet-tiny (depth net, BEV encoder)."""
    model = _build_model('configs/ptqat/bevdet/bevdet-tiny_ptqat-w4a8_synth.py')
    ckpt_path = osp.join(ROOT, 'checkpoints/bevdepth4d-tiny_synth_fp16.pth')
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint(model, load_local_checkpoint(ckpt_path), ckpt_path)
    msg = str(info.value)
    assert msg.startswith(f'checkpoint {ckpt_path} does not fit the model')
    assert 'have another shape' in msg and ': checkpoint [' in msg and 'are missing' in msg
    # the right checkpoints pass: the quick start's and the three continued on the 160-scene set
    for name in ('bevdet-tiny_synth_fp16.pth', 'bevdet-tiny_synth-large_fp16.pth',
                 'bevdet-tiny_synth-large-16e_fp16.pth', 'bevdet-tiny_synth-large-32e_fp16.pth'):
        fp = osp.join(ROOT, 'checkpoints', name)
        assert check_checkpoint(model, load_local_checkpoint(fp), fp) == []


def test_bevdepth4d_checkpoints_fit_bevdepth4d_ptqat_config():
    """The committed BEVDepth4D-tiny FP checkpoints (24 scenes, and three continued on 160) fit its
    PTQAT config key for key and shape for shape; BEVDet-tiny's does not."""
    model = _build_model('configs/ptqat/bevdepth4d/bevdepth4d-tiny_ptqat-w4a8_synth.py')
    for name in ('bevdepth4d-tiny_synth_fp16.pth', 'bevdepth4d-tiny_synth-large_fp16.pth',
                 'bevdepth4d-tiny_synth-large-16e_fp16.pth', 'bevdepth4d-tiny_synth-large-24e_fp16.pth'):
        fp = osp.join(ROOT, 'checkpoints', name)
        assert check_checkpoint(model, load_local_checkpoint(fp), fp) == []
    fp = osp.join(ROOT, 'checkpoints', 'bevdet-tiny_synth-large-16e_fp16.pth')
    with pytest.raises(CheckpointMismatchError, match='does not fit the model'):
        check_checkpoint(model, load_local_checkpoint(fp), fp)


def test_accepted_mismatch_drops_every_quantizer_key_incl_the_sign_decision():
    """With accept_quantization_mismatch the checkpoint's quantizer state is dropped whole, the
    ``auto_signed`` decisions of ``a_signed='auto'`` included (they are recalibrated)."""
    import torch.nn as nn

    from ptqat.engine import quantization_record
    from ptqat.quant import QuantConfig, calibrate, quantize_model

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1))

    saved = net()
    quantize_model(saved, QuantConfig(w_bits=4, a_signed='auto'))
    calibrate(saved, [torch.randn(2, 3, 8, 8)])
    sd = dict(saved.state_dict())
    assert any(k.endswith('input_quantizer.auto_signed') for k in sd)
    checkpoint = dict(state_dict=sd, meta=dict(ptqat=quantization_record(saved)))
    target = net()
    quantize_model(target, QuantConfig(w_bits=8))
    check_checkpoint(target, checkpoint, 'w4.pth', accept_quantization_mismatch=True)
    assert sorted(checkpoint['state_dict']) == sorted(net().state_dict())
