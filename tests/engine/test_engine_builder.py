"""PTQATModel: the builder, FP-checkpoint loading and the config syntax of the ptqat bases."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmdet3d.registry import MODELS
from ptqat.engine import PTQATHook, get_quant_config
from ptqat.quant import QuantConfig, quant_state_keys, quantized_layers
from ptqat_toys import FP_MODEL, TOY_LAYERS, PTQATToyDetector, read_log, toy_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASES = osp.join(ROOT, 'configs', 'ptqat', '_base_')


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmdet3d')


def build(quantization=None, **kw):
    return MODELS.build(dict(type='PTQATModel', model=copy.deepcopy(FP_MODEL), quantization=quantization, **kw))


def test_builder_returns_the_quantized_detector():
    model = build(dict(w_bits=4, a_bits=8, overrides={r'^head$': dict(w_bits=8)}))
    assert type(model) is PTQATToyDetector  # no wrapper
    layers = dict(quantized_layers(model))
    assert list(layers) == TOY_LAYERS
    assert layers['head'].w_bits == 8 and layers['stem.0'].w_bits == 4 and layers['stem.0'].a_bits == 8
    assert isinstance(get_quant_config(model), QuantConfig)
    fp_keys = set(MODELS.build(copy.deepcopy(FP_MODEL)).state_dict())
    keys = set(model.state_dict())
    assert fp_keys <= keys and keys - fp_keys == quant_state_keys(model)
    assert not any(q.is_initialized for n, q in model.named_modules() if n.endswith('quantizer'))


def test_builder_default_and_weight_only():
    assert [n for n, _ in quantized_layers(build())] == TOY_LAYERS  # W4A8 defaults
    model = build(dict(w_bits=4, a_bits=None))
    assert all(layer.input_quantizer is None for _, layer in quantized_layers(model))


@pytest.mark.parametrize('quantization, match', [
    (dict(w_bitz=4), r"unknown QuantConfig key\(s\) \['w_bitz'\]; allowed: w_bits"),
    (dict(w_bits=3.5), 'w_bits'),
    (dict(overrides={r'^img_backbone\.conv1$': dict(w_bits=8)}), r'matches no quantizable layer'),
    (dict(overrides={r'^head$': dict(bits=8)}), r"unknown field\(s\) \['bits'\]"),
])
def test_builder_rejects_bad_quantization(quantization, match):
    with pytest.raises(ValueError, match=match) as info:
        build(quantization)
    assert 'PTQATModel' in str(info.value)


def test_fp_checkpoint_loads_through_load_from(tmp_path, fp_ckpt, capsys):
    """load_from=<FP checkpoint>: every FP tensor lands in the PTQAT model under the same
    key; only the quantizer keys are reported missing."""
    runner = Runner.from_cfg(Config(toy_cfg(tmp_path, load_from=fp_ckpt)))
    capsys.readouterr()
    runner.load_or_resume()
    out = capsys.readouterr().out
    fp = torch.load(fp_ckpt)['state_dict']
    sd = runner.model.state_dict()
    for k, v in fp.items():
        assert torch.equal(sd[k], v), k
    missing = out.split('missing keys in source state_dict: ')[1].split('\n')[0].split(', ')
    assert set(missing) == quant_state_keys(runner.model)
    assert 'unexpected key' not in out


TOY_FP_CONFIG = '''
default_scope = 'mmdet3d'
model = dict(type='PTQATToyDetector', data_preprocessor=dict(type='BaseDataPreprocessor'))
custom_hooks = []
'''


@pytest.mark.parametrize('form', ['braces', 'attribute'])
def test_ptqat_config_pattern(tmp_path, form):
    """The per-model pattern: `_base_` = FP config + a quantization piece + a strategy piece,
    the model wrapped with `_delete_=True`; both `{{_base_.model}}` and `_base_.model` work."""
    (tmp_path / 'fp.py').write_text(TOY_FP_CONFIG)
    bases = [str(tmp_path / 'fp.py'), osp.join(BASES, 'w4a8.py'), osp.join(BASES, 'ptqat.py')]
    if form == 'braces':
        body = ("model = dict(_delete_=True, type='PTQATModel', model={{_base_.model}}, "
                "quantization={{_base_.quantization}})\n"
                "custom_hooks = [{{_base_.ptqat_hook}}]\n")
    else:
        body = ("model = dict(_delete_=True, type='PTQATModel', model=_base_.model, quantization=dict(\n"
                "    _base_.quantization, overrides={r'^head$': dict(w_bits=8)}))\n"
                "custom_hooks = [*_base_.custom_hooks, _base_.ptqat_hook]\n")
    (tmp_path / 'ptqat_cfg.py').write_text(f'_base_ = {bases!r}\n{body}load_from = "fp.pth"\n')
    cfg = Config.fromfile(str(tmp_path / 'ptqat_cfg.py'))
    assert cfg.model.type == 'PTQATModel' and cfg.model.model.type == 'PTQATToyDetector'
    assert cfg.model.quantization.w_bits == 4 and cfg.model.quantization.a_bits == 8
    assert [h.type for h in cfg.custom_hooks] == ['PTQATHook'] and cfg.custom_hooks[0].strategy == 'small'
    model = MODELS.build(cfg.model)
    assert [n for n, _ in quantized_layers(model)] == TOY_LAYERS
    if form == 'attribute':
        assert dict(quantized_layers(model))['head'].w_bits == 8
    # a dumped config (the Runner writes one into the work dir) parses back the same
    cfg.dump(str(tmp_path / 'dumped.py'))
    assert Config.fromfile(str(tmp_path / 'dumped.py')).model.to_dict() == cfg.model.to_dict()


@pytest.mark.parametrize('piece', ['w4a8.py', 'w4.py', 'w8a8.py'])
def test_quantization_pieces_are_valid(piece):
    cfg = Config.fromfile(osp.join(BASES, piece))
    QuantConfig.from_dict(cfg.quantization.to_dict())
    assert [n for n, _ in quantized_layers(build(cfg.quantization))] == TOY_LAYERS


@pytest.mark.parametrize('piece, strategy', [('ptq.py', 'none'), ('qat.py', 'all'), ('ptqat.py', 'small'),
                                             ('ptqat-large.py', 'large')])
def test_strategy_pieces_build_hooks(piece, strategy):
    cfg = Config.fromfile(osp.join(BASES, piece))
    hook = PTQATHook(**{k: v for k, v in cfg.ptqat_hook.items() if k != 'type'})
    assert hook.settings.strategy == strategy
    assert hook.settings.ratio == (0.5 if strategy in ('small', 'large') else None)


def test_init_weights_is_skipped_unless_asked(tmp_path, fp_ckpt):
    """The Runner calls init_weights() before load_from: by default PTQATModel skips it (no
    pretrained download); init_weights=True runs the float model's init_cfg."""
    missing = dict(type='Pretrained', checkpoint=str(tmp_path / 'no_such_imagenet.pth'))
    model = dict(type='PTQATModel', model=dict(FP_MODEL, init_cfg=missing), quantization=dict(w_bits=4))
    runner = Runner.from_cfg(Config(toy_cfg(tmp_path / 'a', load_from=fp_ckpt, hook=dict(strategy='small'),
                                            max_iters=1, model=model)))
    runner.train()
    assert 'init_weights() of PTQATToyDetector skipped' in read_log(tmp_path / 'a')
    model = dict(model, init_weights=True)
    runner = Runner.from_cfg(Config(toy_cfg(tmp_path / 'b', load_from=fp_ckpt, hook=dict(strategy='small'),
                                            max_iters=1, model=model)))
    with pytest.raises(Exception, match='no_such_imagenet'):
        runner.train()
