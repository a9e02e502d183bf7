"""mmengine checkpoints load under torch >= 2.6 (weights-only, with exactly mmengine's globals);
untrusted pickles are refused and unreadable files are named."""
import os
import pickle
import re

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_checkpoint

from ptqat.checkpoint_compat import CheckpointError, history_buffer_getattr  # registers the loader


class _Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(torch.stack(inputs))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def _runner(work_dir, epochs, **kw):
    data = [dict(inputs=torch.randn(2)) for _ in range(4)]
    return Runner(model=_Toy(), work_dir=str(work_dir),
                  train_dataloader=dict(dataset=data, batch_size=2,
                                        sampler=dict(type='DefaultSampler', shuffle=False),
                                        collate_fn=dict(type='pseudo_collate')),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                  train_cfg=dict(by_epoch=True, max_epochs=epochs),
                  default_hooks=dict(logger=None), **kw)


def test_runner_checkpoint_loads_and_resumes(tmp_path):
    _runner(tmp_path, 1).train()
    ckpt = tmp_path / 'epoch_1.pth'
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in \
        torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt))
    model = _Toy()
    load_checkpoint(model, str(ckpt))
    trained = torch.load(ckpt, weights_only=False)['state_dict']
    assert torch.equal(model.fc.weight, trained['fc.weight'])
    resumed = _runner(tmp_path, 2, resume=True, load_from=str(ckpt))
    resumed.train()
    assert resumed.epoch == 2


def test_plain_state_dict_uses_weights_only(tmp_path):
    path = tmp_path / 'sd.pth'
    torch.save(_Toy().state_dict(), path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    load_checkpoint(_Toy(), str(path))


class _Payload:
    def __reduce__(self):
        return (os.system, ('touch PWNED_BY_CHECKPOINT',))


def test_untrusted_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({'state_dict': _Toy().state_dict(), 'meta': _Payload()}, 'evil.pth')
    with pytest.raises(CheckpointError, match=r"refusing to load checkpoint evil.pth: .*posix.system"):
        load_checkpoint(_Toy(), 'evil.pth')
    assert not (tmp_path / 'PWNED_BY_CHECKPOINT').exists()


class _Call:
    """A pickled call ``func(*args)`` (``__reduce__``); callable so that it can be a func itself."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __call__(self, *args):  # pragma: no cover - only pickle looks at it
        raise AssertionError

    def __reduce__(self):
        return self.func, self.args


def _getattr_exploit(marker: str):
    """``os.system('touch marker')`` reached from a pickle whose only globals are
    ``builtins.getattr`` and ``HistoryBuffer`` (both on the old allowlist): getattr to a
    function's ``__globals__``, then ``__builtins__['__import__']('os').system``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    init = _Call(getattr, HistoryBuffer, '__init__')
    glob = _Call(getattr, init, '__globals__')
    builtins_dict = _Call(_Call(getattr, glob, 'get'), '__builtins__')
    importer = _Call(_Call(getattr, builtins_dict, 'get'), '__import__')
    system = _Call(getattr, _Call(importer, 'os'), 'system')
    return _Call(system, f'touch {marker}')


def test_getattr_exploit_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({'state_dict': _Toy().state_dict(), 'meta': _getattr_exploit('PWNED_BY_GETATTR')}, 'evil.pth')
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint('evil.pth')) == {
        'builtins.getattr', 'mmengine.logging.history_buffer.HistoryBuffer'}
    with pytest.raises(CheckpointError, match=r"refusing to load checkpoint evil.pth: .*"
                                              r"refusing getattr\(HistoryBuffer, '__init__'\)"):
        load_checkpoint(_Toy(), 'evil.pth')
    assert not (tmp_path / 'PWNED_BY_GETATTR').exists()


def test_history_buffer_getattr_allows_only_statistics():
    from mmengine.logging.history_buffer import HistoryBuffer
    assert history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    for obj, name in ((HistoryBuffer, '__init__'), (HistoryBuffer, '__class__'), (os, 'system'),
                      (HistoryBuffer.mean, '__globals__')):
        with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
            history_buffer_getattr(obj, name)


@pytest.mark.parametrize('content, match', [
    (b'', r'is an empty file \(0 bytes\)'),
    (b'epoch 24, NDS 0.19\n', r"a text file, not a PyTorch checkpoint \(it starts with 'epoch 24"),
    (b'PK\x03\x04garbage', r'a zip archive that torch.load cannot read'),
    (b'\x80\x02\xff\xfe\x00', r'a binary file that is not a PyTorch checkpoint'),
])
def test_unreadable_file_is_named(tmp_path, content, match):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf'checkpoint {re.escape(str(path))}\b.*{match}'):
        load_checkpoint(_Toy(), str(path))


@pytest.mark.parametrize('obj, kind', [([1, 2], 'list'), (torch.zeros(2), 'Tensor')])
def test_non_dict_checkpoint_is_named(tmp_path, obj, kind):
    path = tmp_path / 'list.pth'
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=rf'checkpoint {re.escape(str(path))} holds a {kind}, not a dict'):
        load_checkpoint(_Toy(), str(path))


_COMMITTED = sorted(os.path.join('checkpoints', f) for f in os.listdir(
    os.path.join(os.path.dirname(__file__), '..', 'checkpoints')) if f.endswith('.pth'))


@pytest.mark.parametrize('path', _COMMITTED)
def test_committed_checkpoint_is_finite(path):
    """Every committed FP checkpoint loads with weights_only and holds no inf / NaN (the first
    BEVDet-occ-tiny file had a BatchNorm running_var turned into inf by the float16 cast)."""
    root = os.path.join(os.path.dirname(__file__), '..')
    sd = torch.load(os.path.join(root, path), map_location='cpu', weights_only=True)['state_dict']
    bad = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    assert bad == [], f'{path}: inf/NaN in {bad}'
