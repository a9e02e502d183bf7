"""tools/train.py, tools/test.py, tools/dist_train.sh and tools/dist_test.sh on a toy config (real mmengine
Runner)."""
import json
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


def test_quantized_checkpoint_under_float_config(config, tmp_path):
    """tools/test.py adds the checkpoint check to a float config: a checkpoint with quantizer
    state is refused, naming the file, unless --accept-quantization-mismatch."""
    from ptqat.engine import CheckpointMismatchError
    work = tmp_path / 'work'
    load_tool('train').main([config, '--work-dir', str(work), '--cfg-options', 'train_cfg.max_epochs=1'])
    sd = torch.load(work / 'epoch_1.pth', weights_only=False)['state_dict']
    quantized = str(tmp_path / 'quantized.pth')
    torch.save(dict(state_dict=dict(sd, **{'head.weight_quantizer.step_size': torch.ones(1),
                                           'head.weight_quantizer.initialized': torch.tensor(True)})), quantized)
    with pytest.raises(CheckpointMismatchError, match=f"checkpoint {quantized} is a quantized .* but this config's"):
        load_tool('test').main([config, quantized, '--work-dir', str(tmp_path / 't1')])
    metrics = load_tool('test').main([config, quantized, '--work-dir', str(tmp_path / 't2'),
                                      '--accept-quantization-mismatch'])
    assert set(metrics) == {'mae'}
    train = load_tool('train')
    cfg = train.load_config(train.parse_args([config, '--allow-partial-checkpoint']))
    assert cfg.checkpoint_check == dict(allow_partial=True)


def test_bad_arguments(config, tmp_path):
    with pytest.raises(SystemExit, match="config file 'nope.py' not found"):
        load_tool('train').main(['nope.py'])
    with pytest.raises(SystemExit, match='--auto-scale-lr needs'):
        load_tool('train').main([config, '--auto-scale-lr', '--work-dir', str(tmp_path)])


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_run(script, *args):
    """``bash tools/<script> ARGS`` (2 processes, gloo on a CPU torch) on a free port."""
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get('PYTHONPATH', '')]))
    return subprocess.run(['bash', osp.join(ROOT, 'tools', script), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU/gloo path')
def test_dist_train_gloo_two_processes(config, tmp_path):
    work = tmp_path / 'dist'
    proc = _dist_run('dist_train.sh', config, '2', '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / 'epoch_1.pth').is_file()
    log = next(work.rglob('*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'distributed backend set to gloo' in proc.stdout + proc.stderr
    assert 'terminate called' not in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU/gloo path')
@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_destroy_the_process_group(config, tmp_path, monkeypatch, tool):
    """A process group left to the interpreter's exit aborts ("terminate called without an active
    exception", gloo threads at finalisation): the tools end it themselves (world size 1 here)."""
    import torch.distributed as dist
    for k, v in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                     MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(k, v)
    from toy_plugin import ToolsToyModel
    ckpt = tmp_path / 'toy.pth'
    torch.save(dict(meta=dict(), state_dict=ToolsToyModel().state_dict()), ckpt)
    args = [config, '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'w')]
    args = args + ['--cfg-options', 'train_cfg.max_epochs=1'] if tool == 'train' else args[:1] + [str(ckpt)] + args[1:]
    try:
        load_tool(tool).main(args)
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU/gloo path')
def test_dist_test_gloo_two_processes_matches_test_py(config, tmp_path):
    """tools/dist_test.sh on 2 processes gives tools/test.py's metric (each rank evaluates half
    of the 16 samples; the results are gathered before the metric)."""
    from toy_plugin import ToolsToyModel
    torch.manual_seed(0)
    ckpt = tmp_path / 'toy.pth'
    torch.save(dict(meta=dict(), state_dict=ToolsToyModel().state_dict()), ckpt)
    single = load_tool('test').main([config, str(ckpt), '--work-dir', str(tmp_path / 'single')])
    out = tmp_path / 'dist_metrics.json'
    proc = _dist_run('dist_test.sh', config, ckpt, '2', '--work-dir', tmp_path / 'dist', '--out', out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'terminate called' not in proc.stderr
    dist = json.loads(out.read_text())
    assert set(dist) == {'mae'} and dist['mae'] == pytest.approx(single['mae'], rel=1e-6)
    log = next((tmp_path / 'dist').rglob('*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    # the whole data set was evaluated: half of it gives another number
    half = load_tool('test').main([config, str(ckpt), '--work-dir', str(tmp_path / 'half'),
                                   '--cfg-options', 'test_dataloader.dataset.n=8'])
    assert half['mae'] != pytest.approx(single['mae'], rel=1e-3)


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
