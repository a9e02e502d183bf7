"""ModelOpt / TensorRT Q/DQ placement (issue 15 item 3): shared input quantizers and quantized
residual adds on mmdet ResNet blocks, through calibration, ranking, selection, freezing,
state_dict round trip and ONNX export (onnxruntime vs PyTorch fake-quant)."""
import numpy as np
import pytest
import torch
from mmdet.models.backbones.resnet import ResNet
from torch import nn

import ptqat.engine  # noqa: F401  (registers the placement rules)
from ptqat.quant import (QuantAdd, QuantConfig, calibrate, export_onnx, freeze_layers, iter_quantizers,
                         measure_discrepancy, quantize_model, quantized_layers, select_layers)

MODES = ('residual', 'both')


class Net(nn.Module):
    """A 2-stage mmdet ResNet (BasicBlock for depth 18, Bottleneck for 50) + a 1x1 conv head."""

    def __init__(self, depth=18):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = ResNet(depth=depth, base_channels=8, num_stages=2, strides=(1, 2), dilations=(1, 1),
                               out_indices=(1,), norm_eval=False, init_cfg=None)
        out = 16 * (4 if depth == 50 else 1)
        self.head = nn.Conv2d(out, 3, 1)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x):
        return self.head(self.backbone(x)[0])


def batches(n=4):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(2, 3, 32, 32, generator=g) for _ in range(n)]


def build(depth=18, **opts):
    net = Net(depth).eval()
    quantize_model(net, QuantConfig(**opts))
    calibrate(net, batches(), progress=False)
    return net


def test_default_is_unchanged():
    plain = build()
    explicit = build(share_input_quantizers=False, quantize_residual_adds=False)
    assert not any(isinstance(m, QuantAdd) for m in plain.modules())
    assert list(plain.state_dict()) == list(explicit.state_dict())
    quantizers = [q for _, q in iter_quantizers(plain)]
    assert len({id(q) for q in quantizers}) == len(quantizers) == 2 * len(quantized_layers(plain))
    blk = plain.backbone.layer2[0]
    assert blk.conv1.input_quantizer is not blk.downsample[0].input_quantizer
    x = batches(1)[0]
    with torch.no_grad():
        assert torch.equal(plain(x), explicit(x))


@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('mode', MODES)
def test_shared_quantizer_is_one_module(depth, mode):
    net = build(depth, share_input_quantizers=True, quantize_residual_adds=mode)
    blocks = [b for layer in (net.backbone.layer1, net.backbone.layer2) for b in layer]
    for b in blocks:
        assert isinstance(b.residual_add, QuantAdd)
        assert (b.residual_add.input_quantizer is None) == (mode == 'residual')
        if b.downsample is not None:
            assert b.conv1.input_quantizer is b.downsample[0].input_quantizer
            assert b.residual_add.residual_quantizer is not b.conv1.input_quantizer
        else:
            assert b.conv1.input_quantizer is b.residual_add.residual_quantizer
    assert any(b.downsample is None for b in blocks) and any(b.downsample is not None for b in blocks)
    # listed once, calibrated once, stored under every reader's name with one value
    ids = [id(q) for _, q in iter_quantizers(net)]
    assert len(ids) == len(set(ids))
    assert all(q.is_initialized for _, q in iter_quantizers(net))
    sd = net.state_dict()
    assert torch.equal(sd['backbone.layer2.0.conv1.input_quantizer.step_size'],
                       sd['backbone.layer2.0.downsample.0.input_quantizer.step_size'])
    # round trip into a fresh model built with the same config
    fresh = Net(depth).eval()
    quantize_model(fresh, QuantConfig(share_input_quantizers=True, quantize_residual_adds=mode))
    fresh.load_state_dict(sd)
    assert fresh.backbone.layer2[0].conv1.input_quantizer is fresh.backbone.layer2[0].downsample[0].input_quantizer
    x = batches(1)[0]
    with torch.no_grad():
        assert torch.equal(fresh(x), net(x))


def test_the_block_output_is_unchanged_by_the_add_module():
    """Quantizers off, the rewritten blocks compute exactly what mmdet's blocks compute."""
    ref = Net().eval()
    net = Net().eval()
    quantize_model(net, QuantConfig(share_input_quantizers=True, quantize_residual_adds='both'))
    for _, q in iter_quantizers(net):
        q.enabled = False
    x = batches(1)[0]
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))


def test_ranking_selection_and_freezing_with_a_shared_quantizer():
    net = build(share_input_quantizers=True, quantize_residual_adds='residual')
    dis = measure_discrepancy(net, batches(2), progress=False)
    adds = [n for n, m in quantized_layers(net) if isinstance(m, QuantAdd)]
    assert set(dis) == {n for n, _ in quantized_layers(net)} and adds and all(dis[a] > 0 for a in adds)
    blk = net.backbone.layer2[0]
    shared = blk.conv1.input_quantizer
    # select the downsample only: the shared step trains, conv1's weight stays frozen
    freeze_layers(net, ['backbone.layer2.0.downsample.0'], lean=False)
    assert shared.step_size.requires_grad and not blk.conv1.weight.requires_grad
    assert blk.downsample[0].weight.requires_grad
    freeze_layers(net, ['backbone.layer2.0.conv2'], lean=False)
    assert not shared.step_size.requires_grad
    chosen = select_layers(dis, 'small', ratio=0.5)
    freeze_layers(net, chosen)
    net.train()
    loss = net(batches(1)[0]).square().mean()
    loss.backward()
    trained = [p for p in net.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained)


def _ort(path, x):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def _producers(model):
    return {o: n for n in model.graph.node for o in n.output}


@pytest.mark.parametrize('mode', MODES + (False,))
def test_export_one_qdq_per_tensor_and_quantized_adds(mode, tmp_path):
    import onnx
    share = mode is not False
    net = build(share_input_quantizers=share, quantize_residual_adds=mode)
    x = batches(1)[0][:1]
    path = export_onnx(net, x, tmp_path / 'm.onnx', input_names=['x'])
    with torch.no_grad():
        ref = net(x).numpy()
    out = _ort(str(path), x)
    rng = float(ref.max() - ref.min())
    assert np.abs(out - ref).max() <= 1e-4 * rng, np.abs(out - ref).max()

    model = onnx.load(str(path))
    prod = _producers(model)
    inits = {i.name for i in model.graph.initializer}
    act_q = [n for n in model.graph.node if n.op_type == 'QuantizeLinear' and n.input[0] not in inits
             and (n.input[0] not in prod or prod[n.input[0]].op_type != 'Constant')]
    used = {id(q) for _, layer in quantized_layers(net) for q in layer.activation_quantizers()}
    # one Q/DQ pair per activation quantizer: a shared one is not repeated per reader
    assert len(act_q) == len(used)
    convs = {n.name: n for n in model.graph.node if n.op_type == 'Conv'}
    ds = next(n for k, n in convs.items() if 'layer2.0/downsample' in k)
    c1 = next(n for k, n in convs.items() if 'layer2.0/conv1' in k)
    assert prod[ds.input[0]].op_type == prod[c1.input[0]].op_type == 'DequantizeLinear'
    assert (ds.input[0] == c1.input[0]) == share
    adds = [n for n in model.graph.node if n.op_type == 'Add' and 'residual_add' in n.name]
    assert len(adds) == (4 if mode else 0)
    for add in adds:
        kinds = [prod[i].op_type if i in prod else 'input' for i in add.input]
        assert kinds[1] == 'DequantizeLinear'
        assert (kinds[0] == 'DequantizeLinear') == (mode == 'both')


def test_bad_option_values_and_models_without_rules():
    with pytest.raises(ValueError, match='quantize_residual_adds'):
        QuantConfig(quantize_residual_adds=True)
    with pytest.raises(ValueError, match='share_input_quantizers'):
        QuantConfig(share_input_quantizers='yes')
    with pytest.raises(ValueError, match='no module .* placement rule'):
        quantize_model(nn.Sequential(nn.Conv2d(3, 4, 3)), QuantConfig(share_input_quantizers=True))


def test_readers_configured_differently_cannot_share():
    net = Net().eval()
    cfg = QuantConfig(share_input_quantizers=True, overrides={r'layer2\.0\.downsample': {'a_bits': 6}})
    with pytest.raises(ValueError, match='cannot share one input quantizer'):
        quantize_model(net, cfg)


def test_a_refused_config_can_be_retried():
    """quantize_model raising after the rules ran (bad skip pattern) leaves blocks that add
    through their Add; a second call with a good config quantizes them."""
    net = Net().eval()
    with pytest.raises(ValueError, match='matches no quantizable layer'):
        quantize_model(net, QuantConfig(quantize_residual_adds='residual', skip=['^nope$']))
    quantize_model(net, QuantConfig(share_input_quantizers=True, quantize_residual_adds='residual'))
    blk = net.backbone.layer1[0]
    assert isinstance(blk.residual_add, QuantAdd) and blk.residual_add.residual_quantizer is blk.conv1.input_quantizer
