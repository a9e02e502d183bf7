"""tools/publish_checkpoint.py: a Runner-style checkpoint -> float16 weights that load back."""
import pytest
import torch
from tool_loader import load_tool


def test_publish_roundtrip(tmp_path):
    tool = load_tool('publish_checkpoint')
    sd = {'conv.weight': torch.randn(4, 3, 3, 3), 'bn.num_batches_tracked': torch.tensor(7)}
    src = tmp_path / 'epoch_3.pth'
    record = dict(layers={'conv': 'W4A8'}, quantization=dict(w_bits=4, a_bits=8))
    torch.save(dict(meta=dict(epoch=3, ptqat=record), state_dict=sd, optimizer=dict(state={})), src)
    out = tool.main([str(src), str(tmp_path / 'slim.pth'), '--config', 'c.py', '--note', 'n'])
    slim = torch.load(out, weights_only=True)
    assert set(slim) == {'meta', 'state_dict'} and slim['meta']['epoch'] == 3
    assert slim['meta']['config'] == 'c.py' and slim['meta']['note'].startswith('n; ')
    assert slim['meta']['ptqat'] == record  # the quantization settings survive publishing
    w = slim['state_dict']['conv.weight']
    assert w.dtype == torch.float16
    torch.testing.assert_close(w.float(), sd['conv.weight'], atol=2e-3, rtol=1e-3)
    assert slim['state_dict']['bn.num_batches_tracked'].dtype == torch.int64


def test_publish_refuses_file_without_state_dict(tmp_path):
    tool = load_tool('publish_checkpoint')
    src = tmp_path / 'x.pth'
    torch.save({'weights': torch.zeros(1)}, src)
    with pytest.raises(ValueError, match='no state_dict'):
        tool.main([str(src), str(tmp_path / 'y.pth')])


def _save(tmp_path, sd, name='epoch_1.pth'):
    src = tmp_path / name
    torch.save(dict(meta=dict(epoch=1), state_dict=sd), src)
    return src


def test_publish_keeps_tensors_beyond_float16_range(tmp_path):
    """A BEV encoder's BatchNorm running_var of 1e5 became inf in float16 (a lent-GPU run)."""
    tool = load_tool('publish_checkpoint')
    sd = {'bn.running_var': torch.tensor([1.0e5, 3.0]), 'bn.running_mean': torch.tensor([6.0e4, 1.0]),
          'conv.weight': torch.randn(2, 2)}
    out = tool.main([str(_save(tmp_path, sd)), str(tmp_path / 'slim.pth')])
    slim = torch.load(out, weights_only=True)
    var = slim['state_dict']['bn.running_var']
    assert var.dtype == torch.float32 and torch.equal(var, sd['bn.running_var'])
    assert slim['state_dict']['bn.running_mean'].dtype == torch.float16  # 6e4 < 65504 fits
    assert slim['state_dict']['conv.weight'].dtype == torch.float16
    assert 'kept as they were: bn.running_var' in slim['meta']['note']
    assert all(torch.isfinite(v.float()).all() for v in slim['state_dict'].values())


def test_publish_refuses_a_diverged_state_dict(tmp_path):
    tool = load_tool('publish_checkpoint')
    sd = {'a.weight': torch.tensor([1.0, float('nan')]), 'b.weight': torch.tensor([float('inf')]),
          'c.weight': torch.ones(1)}
    with pytest.raises(ValueError, match='2 tensors hold inf or NaN .*a.weight, b.weight'):
        tool.main([str(_save(tmp_path, sd)), str(tmp_path / 'slim.pth')])
    assert not (tmp_path / 'slim.pth').exists()


def test_publish_does_not_overwrite_without_asking(tmp_path):
    tool = load_tool('publish_checkpoint')
    src = _save(tmp_path, {'w': torch.ones(2)})
    out = tmp_path / 'slim.pth'
    out.write_bytes(b'precious')
    with pytest.raises(FileExistsError, match='slim.pth exists; pass --overwrite'):
        tool.main([str(src), str(out)])
    assert out.read_bytes() == b'precious'
    tool.main([str(src), str(out), '--overwrite'])
    assert torch.load(out, weights_only=True)['state_dict']['w'].dtype == torch.float16
