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
