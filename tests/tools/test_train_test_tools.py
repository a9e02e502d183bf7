"""tools/train.py, tools/test.py and tools/dist_train.sh on a toy config (real mmengine Runner)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from tool_loader import load_tool

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
CONFIG = '''
custom_imports = dict(imports=['toy_plugin'], allow_failed_imports=False)
default_scope = 'mmdet3d'
model = dict(type='ToolsToyModel')
_loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='pseudo_collate'),
               dataset=dict(type='ToolsToyDataset'))
train_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='ToolsToyMetric')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-2))
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1),
                     logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0)
'''


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    path = tmp_path / 'toy.py'
    path.write_text(CONFIG)
    return str(path)


def test_train_then_test(config, tmp_path):
    work = tmp_path / 'work'
    load_tool('train').main([config, '--work-dir', str(work), '--cfg-options', 'train_cfg.max_epochs=2'])
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()
    metrics = load_tool('test').main([config, str(ckpt), '--work-dir', str(tmp_path / 'test')])
    assert set(metrics) == {'mae'} and metrics['mae'] < 10
    # resume from the last checkpoint continues the epoch count
    load_tool('train').main([config, '--work-dir', str(work), '--resume',
                         '--cfg-options', 'train_cfg.max_epochs=3'])
    assert (work / 'epoch_3.pth').is_file()


def test_bad_arguments(config, tmp_path):
    with pytest.raises(SystemExit, match="config file 'nope.py' not found"):
        load_tool('train').main(['nope.py'])
    with pytest.raises(SystemExit, match='--auto-scale-lr needs'):
        load_tool('train').main([config, '--auto-scale-lr', '--work-dir', str(tmp_path)])


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU/gloo path')
def test_dist_train_gloo_two_processes(config, tmp_path):
    work = tmp_path / 'dist'
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2',
                           '--work-dir', str(work), '--cfg-options', 'train_cfg.max_epochs=1'],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / 'epoch_1.pth').is_file()
    log = next(work.rglob('*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'distributed backend set to gloo' in proc.stdout + proc.stderr


def test_test_tool_missing_checkpoint_first(config, tmp_path):
    """Issue 10 item 6: a missing checkpoint is named before any set-up (here the config is
    not even read: a wrong config path would otherwise be reported first)."""
    with pytest.raises(SystemExit, match=r"checkpoint '.*nope\.pth' not found"):
        load_tool('test').main(['no_such_config.py', str(tmp_path / 'nope.pth')])
    with pytest.raises(SystemExit, match=r"checkpoint '.*' is a directory"):
        load_tool('test').main([config, str(tmp_path)])


PTQ_CONFIG = osp.join(ROOT, 'configs', 'ptqat', 'bevdet', 'bevdet-tiny_ptq-w4a8_synth.py')


def _built_hook(tool, argv):
    """The PTQATHook instance of the Runner that ``tools/<tool>.py argv`` sets up (not run)."""
    mod = load_tool(tool)
    cfg = mod.load_config(mod.parse_args(argv))
    runner = mod.build_runner(cfg)
    return next(h for h in runner.hooks if type(h).__name__ == 'PTQATHook')


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_calib_batches_option_reaches_the_hook(tool, tmp_path):
    """Issue 10 item 6: ``--cfg-options calib_batches=N`` (the configs' knob) is the hook's."""
    pre = [] if tool == 'train' else [osp.join(ROOT, 'checkpoints', 'bevdet-tiny_synth_fp16.pth')]
    argv = [PTQ_CONFIG] + pre + ['--work-dir', str(tmp_path)]
    assert _built_hook(tool, argv).settings.calib_batches == 8  # the config's value
    hook = _built_hook(tool, argv + ['--cfg-options', 'calib_batches=3'])
    assert hook.settings.calib_batches == 3


def test_calib_batches_option_misuse(tmp_path):
    mod = load_tool('train')
    with pytest.raises(SystemExit, match=r'set the config\'s knob instead, calib_batches=N'):
        mod.load_config(mod.parse_args([PTQ_CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                                        'custom_hooks.0.calib_batches=3']))
    fp = osp.join(ROOT, 'configs', 'bevdet', 'bevdet-tiny_synth.py')
    with pytest.raises(SystemExit, match=r'calib_batches=3: this config has no PTQATHook'):
        mod.load_config(mod.parse_args([fp, '--work-dir', str(tmp_path), '--cfg-options', 'calib_batches=3']))
