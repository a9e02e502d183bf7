"""freeze_layers(), FreezeReport, checkpoint round trips and float-checkpoint loading."""
from __future__ import annotations

import io

import pytest
import torch

from ptqat.quant import (FreezeReport, QuantConfig, calibrate, freeze_layers, frozen_parameter_names, iter_quantizers,
                         load_fp_state_dict, quant_state_keys, quantize_model, quantized_layers, trainable_layers)
from quant_toys import ToyCNN, ToyTransformer, cnn_batches


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize('train_unquantized', [False, True])
def test_optimizer_step_changes_only_selected_layers(qcnn, train_unquantized):
    model, batches = qcnn
    selected = ['conv2', 'fc']
    report = freeze_layers(model, selected, train_unquantized=train_unquantized)
    before = _snapshot(model)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for b in batches:
        opt.zero_grad()
        model(b).pow(2).mean().backward()
        opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    expected_trainable = {n for n in before if n.split('.')[0] in selected}
    if train_unquantized:
        expected_trainable |= {'bn1.weight', 'bn1.bias'}
    assert changed == expected_trainable
    # step sizes of the selected layers are among the trained tensors, frozen ones untouched
    assert {'conv2.weight_quantizer.step_size', 'conv2.input_quantizer.step_size', 'fc.weight',
            'fc.bias'} <= changed
    assert 'conv1.weight_quantizer.step_size' not in changed and 'up.input_quantizer.step_size' not in changed
    assert report.trainable == selected


def test_keep_frozen_parameters_of_the_float_model(qcnn):
    """What the float model froze (here conv1's weight and bn1, as frozen stages) stays frozen
    whatever the selection and train_unquantized, also on a second call; the selected layer's
    step sizes still train."""
    model, batches = qcnn
    model.conv1.weight.requires_grad_(False)
    model.bn1.requires_grad_(False)
    kept = frozen_parameter_names(model)
    assert kept == ['conv1.weight', 'bn1.weight', 'bn1.bias']
    for _ in range(2):  # a second freezing of the same model gives the same result
        report = freeze_layers(model, ['conv1', 'fc'], train_unquantized=True, keep_frozen=kept)
        grads = {n: p.requires_grad for n, p in model.named_parameters()}
        assert not any(grads[n] for n in kept)
        assert grads['conv1.weight_quantizer.step_size'] and grads['conv1.input_quantizer.step_size']
        assert grads['fc.weight'] and not grads['conv2.weight']
        assert report.num_params_kept_frozen == sum(dict(model.named_parameters())[n].numel() for n in kept)
        assert 'kept frozen (float model)' in report.format_table()
    # without keep_frozen a selected layer trains its weight (the caller decides)
    freeze_layers(model, ['conv1'], keep_frozen=())
    assert model.conv1.weight.requires_grad
    with pytest.raises(ValueError, match=r"keep_frozen: not parameters of this model: \['conv9.weight'\]"):
        freeze_layers(model, ['fc'], keep_frozen=['conv9.weight'])
    with pytest.raises(ValueError, match='keep_frozen must be a list of parameter names'):
        freeze_layers(model, ['fc'], keep_frozen='conv1.weight')


def test_freeze_report_counts(qcnn):
    model, _ = qcnn
    report = freeze_layers(model, ['up'])
    assert isinstance(report, FreezeReport)
    assert report.quantized == ['conv1', 'conv2', 'up', 'proj', 'fc']
    assert (report.num_quantized, report.num_trainable, report.num_frozen) == (5, 1, 4)
    assert report.frozen == ['conv1', 'conv2', 'proj', 'fc']
    up = model.up
    expected = up.weight.numel() + up.bias.numel() + up.weight_quantizer.step_size.numel() + 1
    assert report.num_params_trainable == expected
    assert report.num_params_total == sum(p.numel() for p in model.parameters())
    d = report.as_dict()
    assert d['num_trainable'] == 1 and d['trainable'] == ['up'] and d['num_params_trainable'] == expected
    table = report.format_table(show_layers=True)
    assert 'trainable layers' in table and f'{expected:,}' in table and '| up' in table and 'frozen' in table
    assert str(report) == report.format_table()


def test_freeze_unknown_names_raise(qcnn):
    model, _ = qcnn
    with pytest.raises(ValueError, match=r"not quantized layers of this model: \['bn1', 'nope'\]"):
        freeze_layers(model, ['conv1', 'bn1', 'nope'])
    with pytest.raises(ValueError, match="the string 'conv1'"):
        freeze_layers(model, 'conv1')


def test_freeze_mha_owns_in_proj_not_out_proj(qtransformer):
    model, _ = qtransformer
    freeze_layers(model, ['attn'])
    assert model.attn.in_proj_weight.requires_grad and model.attn.weight_quantizer.step_size.requires_grad
    assert not model.attn.out_proj.weight.requires_grad
    assert trainable_layers(model) == ['attn']


def test_state_round_trip_exact(qtransformer, tmp_path):
    model, batches = qtransformer
    freeze_layers(model, ['embed', 'ffn2'])
    model.train()  # a QAT step so that the state differs from a fresh calibration
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    model(batches[0]).pow(2).mean().backward()
    opt.step()
    model.eval()
    path = tmp_path / 'ptqat.pth'
    torch.save(model.state_dict(), path)

    torch.manual_seed(123)
    fresh = ToyTransformer().eval()
    quantize_model(fresh, QuantConfig(w_bits=4, a_bits=8))
    fresh.load_state_dict(torch.load(path), strict=True)
    assert trainable_layers(fresh) == ['embed', 'ffn2']
    with torch.no_grad():
        for b in batches:
            assert torch.equal(fresh(b), model(b))
    report = freeze_layers(fresh, trainable_layers(fresh))
    assert report.trainable == ['embed', 'ffn2']
    assert {n for n, p in fresh.named_parameters() if p.requires_grad} == \
        {n for n, p in model.named_parameters() if p.requires_grad}


def test_lazily_allocated_per_channel_steps_load_into_fresh_model():
    def build():
        m = ToyCNN().eval()
        quantize_model(m)
        # replace one activation quantizer by a lazily-sized per-channel one
        from ptqat.quant import LSQQuantizer
        m.conv2.input_quantizer = LSQQuantizer(8, per_channel=True, ch_axis=1)
        return m

    model = build()
    calibrate(model, cnn_batches(), progress=False)
    assert model.conv2.input_quantizer.step_size.shape == (8,)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = build()
    assert fresh.conv2.input_quantizer.step_size.shape == (1,)
    fresh.load_state_dict(torch.load(buf))
    x = cnn_batches(1, seed=5)[0]
    assert torch.equal(fresh(x), model(x))


def test_fp_checkpoint_loads_with_only_quantizer_keys_missing():
    fp = ToyTransformer()
    sd = fp.state_dict()
    model = ToyTransformer()
    quantize_model(model)
    result = model.load_state_dict(sd, strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == quant_state_keys(model) and result.missing_keys
    assert all(('quantizer' in k) or k.endswith('ptqat_trainable') for k in result.missing_keys)

    model = ToyTransformer()
    quantize_model(model)
    missing = load_fp_state_dict(model, sd)
    assert set(missing) == quant_state_keys(model)
    for k, v in sd.items():
        assert torch.equal(model.state_dict()[k], v)
    assert not any(q.is_initialized for _, q in iter_quantizers(model))


def test_load_fp_state_dict_errors_name_keys():
    fp = ToyCNN().state_dict()
    model = ToyCNN()
    quantize_model(model)
    bad = dict(fp)
    del bad['conv1.weight']
    bad['extra.weight'] = torch.zeros(1)
    w_before = model.conv2.weight.detach().clone()
    bad['conv2.weight'] = torch.zeros_like(w_before)
    with pytest.raises(ValueError, match=r"missing keys \['conv1.weight'\], unexpected keys \['extra.weight'\]"):
        load_fp_state_dict(model, bad)
    assert torch.equal(model.conv2.weight, w_before)  # nothing loaded


def test_quant_state_keys_cover_exactly_the_additions():
    fp_keys = set(ToyCNN().state_dict())
    model = ToyCNN()
    quantize_model(model)
    assert set(model.state_dict()) - fp_keys == quant_state_keys(model)
    assert len(quantized_layers(model)) == sum(k.endswith('ptqat_trainable') for k in quant_state_keys(model))


def test_trainable_layers_default_empty(qcnn):
    model, _ = qcnn
    assert trainable_layers(model) == []
    freeze_layers(model, [])  # PTQ: everything frozen
    assert not any(p.requires_grad for p in model.parameters())
