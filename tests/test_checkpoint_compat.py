"""mmengine checkpoints load under torch >= 2.6, and untrusted pickles are still refused."""
import os

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_checkpoint

import ptqat.checkpoint_compat  # noqa: F401  (registers the loader)


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
    with pytest.raises(RuntimeError, match=r"refusing to unpickle .*\['posix.system'\]"):
        load_checkpoint(_Toy(), 'evil.pth')
    assert not (tmp_path / 'PWNED_BY_CHECKPOINT').exists()
