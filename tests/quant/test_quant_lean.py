"""Lean PTQAT (issue 11): the fused/frozen paths give the plain implementation's outputs and
gradients, and frozen layers keep no float copy of their input for the backward pass."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from reference_impl import reference_mode

from ptqat.quant import (QuantConv1d, QuantConv2d, QuantConv3d, QuantConvTranspose2d, QuantLinear, QuantMatMul,
                         QuantMultiheadAttention, freeze_layers, quantized_layers)
from ptqat.quant.frozen import LeanBatchNorm2d, LeanReLU, make_lean
from ptqat.quant.layers import MatMul

BITS = (2, 3, 4, 5, 6, 7, 8)
#: which tensors need a gradient: input x, weights/biases, step sizes
MODES = {'all': (True, True, True), 'frozen': (True, False, False), 'weights': (True, True, False),
         'steps': (True, False, True), 'steps_no_input': (False, False, True), 'weights_no_input': (False, True, False)}


def _layer(kind: str, bits: int, per_channel: bool):
    """``(quantized layer, inputs)`` for one layer kind; step sizes initialised so that some
    input values clip."""
    g = torch.Generator().manual_seed(bits)
    if kind == 'conv2d':
        m, xs = QuantConv2d.from_float(nn.Conv2d(6, 8, 3, padding=1, stride=2), bits, bits, per_channel), [(2, 6, 9, 9)]
    elif kind == 'conv2d_groups':
        m = QuantConv2d.from_float(nn.Conv2d(6, 6, 3, groups=3, dilation=2, bias=False), bits, bits, per_channel)
        xs = [(2, 6, 9, 9)]
    elif kind == 'conv1d':
        m, xs = QuantConv1d.from_float(nn.Conv1d(5, 7, 3), bits, bits, per_channel), [(2, 5, 11)]
    elif kind == 'conv3d':
        m = QuantConv3d.from_float(nn.Conv3d(3, 4, 3, padding=1, stride=(1, 2, 2)), bits, bits, per_channel)
        xs = [(2, 3, 4, 6, 6)]
    elif kind == 'convT':
        m = QuantConvTranspose2d.from_float(nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1,
                                                               groups=2), bits, bits, per_channel)
        xs = [(2, 6, 5, 5)]
    elif kind == 'linear':
        m, xs = QuantLinear.from_float(nn.Linear(7, 5), bits, bits, per_channel), [(3, 4, 7)]
    elif kind == 'mha':
        m = QuantMultiheadAttention.from_float(nn.MultiheadAttention(8, 2, batch_first=True), bits, bits, per_channel)
        xs = [(2, 5, 8)]
    elif kind == 'mha_cross':
        m = QuantMultiheadAttention.from_float(nn.MultiheadAttention(8, 2, kdim=6, vdim=4), bits, bits, per_channel)
        xs = [(5, 2, 8), (3, 2, 6), (3, 2, 4)]
    elif kind == 'matmul':
        m, xs = QuantMatMul.from_float(MatMul(), bits, bits, per_channel), [(2, 4, 6), (2, 6, 3)]
    else:
        raise AssertionError(kind)
    inputs = [torch.randn(s, generator=g) for s in xs]
    for _, layer in quantized_layers(m):
        layer.init_weight_quantizers()
    return m, inputs


def _forward(m, inputs):
    if isinstance(m, QuantMultiheadAttention):
        q = inputs[0]
        k, v = (inputs[1], inputs[2]) if len(inputs) == 3 else (q, q)
        return m(q, k, v)[0]
    return m(*inputs)


def _init_activations(m, inputs) -> None:
    """Activation steps from 0.6 x the observed range: the largest inputs clip."""
    for _, layer in quantized_layers(m):
        for q in layer.activation_quantizers():
            q.start_observation('minmax')
    with torch.no_grad():
        _forward(m, inputs)
    for _, layer in quantized_layers(m):
        for q in layer.activation_quantizers():
            if q.finish_observation():
                with torch.no_grad():
                    q.step_size.mul_(0.6)


def _grads(m, inputs, need_x: bool):
    inputs = [x.detach().clone().requires_grad_(need_x) for x in inputs]
    out = _forward(m, inputs)
    w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    targets = [x for x in inputs if x.requires_grad] + [p for p in m.parameters() if p.requires_grad]
    grads = torch.autograd.grad((out * w).sum(), targets, allow_unused=True)
    return out.detach(), [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, targets)]


def _assert_close(a, b, what):
    scale = max(b.abs().max().item(), 1e-12)
    err = (a - b).abs().max().item()
    assert err <= 1e-6 * scale, f'{what}: max abs error {err:g} vs scale {scale:g}'


KINDS = ('conv2d', 'conv2d_groups', 'conv1d', 'conv3d', 'convT', 'linear', 'mha', 'mha_cross', 'matmul')
#: (kind, mode) pairs with something to differentiate (a matmul has no weights)
KIND_MODES = [(k, m) for k in KINDS for m in MODES if not (k == 'matmul' and m == 'weights_no_input')]


@pytest.mark.parametrize('per_channel', [True, False])
@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('kind,mode', KIND_MODES)
def test_lean_gradients_equal_reference(kind, bits, per_channel, mode):
    m, inputs = _layer(kind, bits, per_channel)
    _init_activations(m, inputs)
    need_x, need_w, need_s = MODES[mode]
    for name, p in m.named_parameters():
        p.requires_grad_(need_s if name.endswith('step_size') else need_w)
    out, grads = _grads(m, inputs, need_x)
    with reference_mode():
        ref_out, ref_grads = _grads(m, inputs, need_x)
    assert torch.equal(out, ref_out)
    assert len(grads) == len(ref_grads)
    for i, (a, b) in enumerate(zip(grads, ref_grads)):
        _assert_close(a, b, f'gradient {i}')


class ConvBNReLUNet(nn.Module):
    """Input ``(N, 4, 12, 12)``: four Conv-BN-ReLU blocks (nn.ReLU modules) and a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        chans = [4, 8, 8, 8, 8]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1), nn.BatchNorm2d(chans[i + 1]),
                          nn.ReLU(inplace=True)) for i in range(4))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x.mean(dim=(2, 3)))


def _calibrated_net(bits=4):
    from ptqat.quant import QuantConfig, calibrate, quantize_model
    torch.manual_seed(1)
    net = ConvBNReLUNet()
    for b in net.blocks:  # non-trivial BN statistics
        b[1].running_mean.uniform_(-0.2, 0.2)
        b[1].running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(b[1].weight, 0.5, 1.5)
    net.eval()
    quantize_model(net, QuantConfig(w_bits=bits, a_bits=8))
    batches = [torch.randn(2, 4, 12, 12) for _ in range(2)]
    calibrate(net, batches, progress=False)
    return net, batches


def _freeze_norms(net):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


@pytest.mark.parametrize('trainable', [['blocks.2.0', 'head'], ['blocks.0.0'], ['blocks.1.0', 'blocks.3.0']])
def test_ptqat_model_gradients_equal_reference(trainable):
    net, batches = _calibrated_net()
    keys = set(net.state_dict())
    freeze_layers(net, trainable)
    assert set(net.state_dict()) == keys
    assert isinstance(net.blocks[0][1], LeanBatchNorm2d) and isinstance(net.blocks[0][2], LeanReLU)
    net.train()
    _freeze_norms(net)
    for need_x in (False, True):
        out, grads = _grads(net, batches[:1], need_x)
        with reference_mode():
            ref_out, ref_grads = _grads(net, batches[:1], need_x)
        assert torch.equal(out, ref_out)
        for i, (a, b) in enumerate(zip(grads, ref_grads)):
            _assert_close(a, b, f'gradient {i}')


def _saved_float_numels(fn):
    """Numels of the floating-point tensors autograd saves while ``fn()`` runs."""
    saved = []

    def pack(t):
        if t.is_floating_point():
            saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return saved


@pytest.mark.parametrize('kind', ['conv2d', 'convT', 'linear'])
def test_frozen_layer_saves_no_float_input(kind):
    m, (x,) = _layer(kind, 4, True)
    _init_activations(m, [x])
    for p in m.parameters():
        p.requires_grad_(False)
    x.requires_grad_(True)
    lean = _saved_float_numels(lambda: m(x))
    assert all(n < x.numel() for n in lean), lean
    with reference_mode():  # the plain path keeps float copies of the input: the check can fail
        plain = _saved_float_numels(lambda: m(x))
    assert any(n >= x.numel() for n in plain), plain


@pytest.mark.parametrize('relu', [nn.ReLU, LeanReLU])
@pytest.mark.parametrize('frozen', [True, False])
def test_inplace_relu_after_lean_linear_on_3d_input(relu, frozen):
    """F.linear returns a view for a 3-D input; an in-place ReLU after the lean Linear (the
    FFN of SparseBEV's decoder layer) must work and give the reference gradients."""
    m, (x,) = _layer('linear', 4, True)
    _init_activations(m, [x])
    if frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    net = nn.Sequential(m, relu(inplace=True))
    lean_out, lean_grads = _grads(net, [x], need_x=True)
    with reference_mode():
        ref_out, ref_grads = _grads(net, [x], need_x=True)
    _assert_close(lean_out, ref_out, 'output')
    for a, b in zip(lean_grads, ref_grads):
        _assert_close(a, b, 'gradient')


def test_frozen_block_saves_no_float_activation():
    net, batches = _calibrated_net()
    freeze_layers(net, ['head'])  # every conv, BN and ReLU frozen; the input needs a gradient
    net.train()
    _freeze_norms(net)
    x = batches[0].clone().requires_grad_(True)
    act = 8 * 12 * 12 * 2
    lean = _saved_float_numels(lambda: net(x))
    assert all(n < act for n in lean if n != x.numel()), lean
    assert sum(n >= act for n in lean) == 0, lean
    with reference_mode():
        plain = _saved_float_numels(lambda: net(x))
    assert sum(n >= act for n in plain) >= 8, plain


def test_layers_before_first_trainable_build_no_graph():
    net, batches = _calibrated_net()
    freeze_layers(net, ['blocks.3.0'])
    net.train()
    _freeze_norms(net)
    seen = {}
    hooks = [net.blocks[i].register_forward_hook(lambda mod, inp, out, i=i: seen.__setitem__(i, out.requires_grad))
             for i in range(4)]
    net(batches[0]).sum().backward()
    for h in hooks:
        h.remove()
    assert seen == {0: False, 1: False, 2: False, 3: True}
    assert net.blocks[3][0].weight.grad is not None


def test_frozen_weight_cache_follows_weight_and_step_changes():
    net, batches = _calibrated_net()
    freeze_layers(net, ['head'])
    net.eval()
    conv = net.blocks[1][0]
    x = batches[0]
    net(x)
    cached = conv.weight_quantizer._wq_cache[1]
    net(x)
    assert conv.weight_quantizer._wq_cache[1] is cached  # reused, not recomputed
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state['blocks.1.0.weight'] = state['blocks.1.0.weight'] * 1.7
    state['blocks.2.0.weight_quantizer.step_size'] = state['blocks.2.0.weight_quantizer.step_size'] * 0.5
    net.load_state_dict(state)
    with torch.no_grad():
        out = net(x)
        with reference_mode():
            ref = net(x)
    assert torch.equal(out, ref)
    with torch.no_grad():
        net.blocks[3][0].weight_quantizer.step_size.mul_(2.0)
        out, ref = net(x), None
        with reference_mode():
            ref = net(x)
    assert torch.equal(out, ref)


def test_make_lean_keeps_state_and_subclasses():
    class MyReLU(nn.ReLU):
        pass

    net = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), MyReLU(), nn.Conv2d(2, 2, 1),
                        nn.ReLU(inplace=True))
    keys = list(net.state_dict())
    assert make_lean(net) == 3
    assert type(net[3]) is MyReLU and isinstance(net[1], nn.BatchNorm2d)
    assert list(net.state_dict()) == keys
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    out = net(x)
    g, = torch.autograd.grad(out.sum(), x)
    with reference_mode():
        ref = net(x)
        ref_g, = torch.autograd.grad(ref.sum(), x)
    assert torch.equal(out, ref)
    _assert_close(g, ref_g, 'input gradient')


@pytest.mark.parametrize('lean_relu', [False, True])
def test_inplace_relu_after_linear_on_3d_input(lean_relu):
    """A transformer FFN (Linear -> ReLU(inplace) -> Linear on (B, L, C)): F.linear returns a view
    there, which autograd forbids to modify in place in a custom Function's output."""
    torch.manual_seed(0)
    net = nn.Sequential(QuantLinear.from_float(nn.Linear(8, 16), 4, 8, True), nn.ReLU(inplace=True),
                        QuantLinear.from_float(nn.Linear(16, 4), 4, 8, True))
    if lean_relu:
        assert make_lean(net) == 1 and isinstance(net[1], LeanReLU)
    x = torch.randn(3, 5, 8, requires_grad=True)
    for m in (net[0], net[2]):
        m.weight_quantizer.init_step_size(m.weight.detach())
    net[0].input_quantizer.init_step_size(x.detach())
    net[2].input_quantizer.init_step_size(torch.relu(net[0](x)).detach())
    out = net(x)
    g, = torch.autograd.grad(out.square().sum(), x)
    with reference_mode():
        ref = net(x)
        ref_g, = torch.autograd.grad(ref.square().sum(), x)
    assert torch.equal(out, ref)
    _assert_close(g, ref_g, 'input gradient')
