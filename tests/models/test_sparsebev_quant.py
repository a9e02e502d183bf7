"""SparseBEV under ptqat.quant: AdaptiveMixing's dynamic matmuls quantized on both operands,
and the weight-shared decoder layer -- one module, six calls per forward, statistics and
discrepancy aggregated over the calls, one selection for all stages."""
import copy

import pytest
import torch

from sparsebev_testutils import build_sparsebev, make_samples

from ptqat.models.sparsebev import AdaptiveMixing
from ptqat.quant import (QuantConfig, QuantMatMul, calibrate, discrepancy_per_sample,
                         measure_discrepancy, quant_range, quantize_model, select_layers)

LAYER = 'pts_bbox_head.transformer.decoder.decoder_layer'


def _mixing_inputs(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, 5, 4, 8, 8, generator=g), torch.randn(2, 5, 32, generator=g))
            for _ in range(n)]


def test_dynamic_matmuls_quantized_on_both_operands_close_to_float_at_8_bits():
    torch.manual_seed(0)
    mix = AdaptiveMixing(in_dim=32, in_points=8, n_groups=4, out_points=16)
    torch.nn.init.normal_(mix.parameter_generator.weight, std=0.05)
    ref_model = copy.deepcopy(mix).eval()
    names = quantize_model(mix, QuantConfig(w_bits=8, a_bits=8))
    assert {'channel_matmul', 'point_matmul'} <= set(names)
    for name in ('channel_matmul', 'point_matmul'):
        qm = getattr(mix, name)
        assert isinstance(qm, QuantMatMul)
        assert qm.input_quantizer.bits == 8 and qm.other_quantizer.bits == 8
    batches = _mixing_inputs()
    calibrate(mix, batches, lambda m, b: m(*b), progress=False)
    for name in ('channel_matmul', 'point_matmul'):
        qm = getattr(mix, name)
        assert float(qm.input_quantizer.step_size) > 0 and float(qm.other_quantizer.step_size) > 0
    mix.eval()
    x, q = _mixing_inputs(1, seed=7)[0]
    with torch.no_grad():
        out, ref = mix(x, q) - q, ref_model(x, q) - q
    rel = float((out - ref).norm() / ref.norm())
    assert 0 < rel < 0.03, rel
    # both operands go through their quantizers: the matmul equals the float matmul of the
    # fake-quantized operands, and differs from the float one
    cm = mix.channel_matmul
    a, b = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        expect = torch.matmul(cm.input_quantizer(a), cm.other_quantizer(b))
        torch.testing.assert_close(cm(a, b), expect)
        assert not torch.allclose(cm(a, b), torch.matmul(a, b))
        cm.other_quantizer.enabled = False
        assert not torch.allclose(cm(a, b), expect)
        cm.other_quantizer.enabled = True


@pytest.fixture(scope='module')
def quantized_tiny():
    model, cfg = build_sparsebev('sparsebev-tiny.py')
    T = cfg.model.pts_bbox_head.transformer.num_frames
    model.eval()
    torch.manual_seed(1)
    torch.nn.init.normal_(model.pts_bbox_head.transformer.decoder.decoder_layer.mixing
                          .parameter_generator.weight, std=0.05)
    names = quantize_model(model, QuantConfig(w_bits=4, a_bits=8, a_init='lsq'))
    batches = [(dict(imgs=torch.randn(1, T * 6, 3, 64, 176)),
                make_samples(1, T, img_hw=(64, 176), with_gt=False)) for _ in range(2)]
    return model, names, batches


def _forward(model, batch):
    return model._forward(*batch)


def _record_inputs(module):
    calls = []
    h = module.register_forward_pre_hook(lambda m, args: calls.append(args[0].detach().clone()))
    return calls, h


def test_shared_layer_calibrated_on_all_six_calls(quantized_tiny):
    model, names, batches = quantized_tiny
    num_layers = model.pts_bbox_head.transformer.decoder.num_layers
    assert num_layers == 6
    shared = [n for n in names if n.startswith(LAYER)]
    assert f'{LAYER}.mixing.channel_matmul' in shared and f'{LAYER}.ffn.layers.1' in shared
    assert len(shared) == len(set(shared))  # each shared layer is ONE quantized module
    layer = model.get_submodule(f'{LAYER}.mixing.parameter_generator')
    calls, h = _record_inputs(layer)
    try:
        calibrate(model, batches, _forward, progress=False)
    finally:
        h.remove()
    assert len(calls) == num_layers * len(batches)
    _, qp = quant_range(8, True)
    mean_all = torch.cat([c.abs().flatten() for c in calls]).double().mean()
    expect = 2 * mean_all / qp ** 0.5
    torch.testing.assert_close(layer.input_quantizer.step_size.double().reshape(()), expect,
                               rtol=1e-5, atol=0)
    first = 2 * calls[0].abs().double().mean() / qp ** 0.5
    assert abs(float(first) - float(expect)) > 1e-3 * float(expect)  # not just stage 1


def test_shared_layer_discrepancy_over_all_calls_one_selection(quantized_tiny):
    model, names, batches = quantized_tiny
    name = f'{LAYER}.mixing.out_proj'
    layer = model.get_submodule(name)
    disc = measure_discrepancy(model, batches, _forward, metric='l2', mode='local',
                               progress=False)
    assert list(disc) == list(dict.fromkeys(disc))  # one entry per module
    # the reference: every call's float input, float vs own-quantized output, averaged
    quantizers = [m for m in model.modules() if type(m).__name__ == 'LSQQuantizer']
    for q in quantizers:
        q.enabled = False
    calls, h = _record_inputs(layer)
    try:
        with torch.no_grad():
            for b in batches:
                _forward(model, b)
    finally:
        h.remove()
    for q in quantizers:
        q.enabled = True
    assert len(calls) == 6 * len(batches)
    vals = []
    with torch.no_grad():
        for x in calls:
            for q in layer.own_quantizers():
                q.enabled = False
            ref = layer(x)
            for q in layer.own_quantizers():
                q.enabled = True
            vals.append(discrepancy_per_sample(layer(x), ref, 'l2'))
    expect = float(torch.cat(vals).double().mean())
    assert disc[name] == pytest.approx(expect, rel=1e-5)
    assert disc[name] != pytest.approx(float(vals[0].double().mean()), rel=1e-3)
    selected = select_layers(disc, strategy='small', ratio=0.5)
    assert len(selected) == len(set(selected))
    assert sum(n == name for n in selected) <= 1


@pytest.mark.parametrize('size, suffix', [('tiny', 'synth'), ('r50', 'nus')])
@pytest.mark.parametrize('variant, strategy, w_bits, a_bits', [
    ('ptq-w4a8', 'none', 4, 8), ('qat-w4a8', 'all', 4, 8), ('ptqat-w4a8', 'small', 4, 8),
    ('ptqat-large-w4a8', 'large', 4, 8), ('ptqat-w4', 'small', 4, None),
    ('ptqat-w8a8', 'small', 8, 8)])
def test_ptqat_configs_build(size, suffix, variant, strategy, w_bits, a_bits):
    import os.path as osp

    import ptqat.plugin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet3d.registry import MODELS
    from ptqat.quant import quantized_layers
    from sparsebev_testutils import REPO
    if size == 'r50' and variant != 'ptqat-w4a8':
        pytest.skip('full size: one variant is enough (same bases)')
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'ptqat', 'sparsebev',
                                   f'sparsebev-{size}_{variant}_{suffix}.py'))
    assert cfg.model.model.type == 'SparseBEV'
    assert [h['type'] for h in cfg.custom_hooks] == ['PTQATHook', 'ResourceUsageHook']
    assert cfg.custom_hooks[0]['strategy'] == strategy
    layers = dict(quantized_layers(MODELS.build(cfg.model)))
    mm = {n: m for n, m in layers.items() if isinstance(m, QuantMatMul)}
    assert sorted(n.split('decoder_layer.')[-1] for n in mm) == [
        'mixing.channel_matmul', 'mixing.point_matmul']
    for m in mm.values():
        if a_bits is None:
            assert m.input_quantizer is None and m.other_quantizer is None
        else:
            assert m.input_quantizer.bits == a_bits and m.other_quantizer.bits == a_bits
    bits = {n: m.weight_quantizer.bits for n, m in layers.items() if m.weight_quantizer is not None}
    eight = sorted(n for n, b in bits.items() if b == 8)
    assert w_bits == 8 or [n.split('.')[-2:] for n in eight] == [
        ['img_backbone', 'conv1'], ['cls_branch', '6'], ['reg_branch', '4']]
