"""--deterministic of tools/train.py / tools/test.py (issue 16 item 0)."""
import hashlib
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from tool_loader import load_tool

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, osp.join(ROOT, 'tools'))
from _determinism import deterministic_env, missing_env, threads_from_argv  # noqa: E402

from test_train_test_tools import CONFIG  # noqa: E402  (the toy config of the tool tests)


def _state_hash(path):
    sd = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    h = hashlib.sha1()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'toy.py'
    path.write_text(CONFIG)
    return str(path)


def test_env_and_threads_parsing():
    assert threads_from_argv(['cfg.py', '--deterministic']) == 1
    assert threads_from_argv(['cfg.py', '--threads', '3']) == 3
    assert threads_from_argv(['cfg.py', '--threads=2']) == 2
    with pytest.raises(SystemExit, match="--threads must be an integer >= 1, got '0'"):
        threads_from_argv(['--threads', '0'])
    env = deterministic_env(2)
    assert env['PYTHONHASHSEED'] == '0' and env['OMP_NUM_THREADS'] == env['MKL_NUM_THREADS'] == '2'
    assert missing_env(2, dict(env)) == {}
    assert missing_env(1, dict(env)) == {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}


def test_deterministic_sets_the_config(config, tmp_path):
    train = load_tool('train')
    before = torch.get_num_threads()
    try:
        cfg = train.load_config(train.parse_args([config, '--deterministic', '--threads', '1',
                                                  '--work-dir', str(tmp_path)]))
        assert cfg.randomness == dict(seed=0, deterministic=True)
        assert torch.get_num_threads() == 1
        cfg = train.load_config(train.parse_args([config, '--deterministic', '--work-dir', str(tmp_path),
                                                  '--cfg-options', 'randomness.seed=5']))
        assert cfg.randomness == dict(seed=5, deterministic=True)
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit, match='--threads 2 is only used with --deterministic'):
        train.load_config(train.parse_args([config, '--threads', '2', '--work-dir', str(tmp_path)]))
    with pytest.raises(SystemExit, match='--threads must be an integer >= 1, got 0'):
        train.load_config(train.parse_args([config, '--deterministic', '--threads', '0', '--work-dir',
                                            str(tmp_path)]))


def _train(config, work, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, osp.join(ROOT, 'projects'),
                                                       os.environ.get('PYTHONPATH', '')]))
    for k in deterministic_env(1):  # the tool must set these itself
        env.pop(k, None)
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', str(work),
                           *extra], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_two_deterministic_runs_are_bit_identical(config, tmp_path):
    """Two processes of tools/train.py --deterministic (toy model, real Runner, 2 epochs of
    shuffled batches with AdamW): the same weights bit for bit; the tool re-executed itself with
    the mode's environment (no 'lacks' warning)."""
    logs = [_train(config, tmp_path / f'run{i}', '--deterministic') for i in range(2)]
    assert all('lacks' not in log for log in logs)
    assert all('--deterministic: seed 0, 1 intra-op thread(s)' in log for log in logs)
    assert _state_hash(tmp_path / 'run0' / 'epoch_2.pth') == _state_hash(tmp_path / 'run1' / 'epoch_2.pth')


BEVDET = osp.join(ROOT, 'configs', 'ptqat', 'bevdet', 'bevdet-tiny_ptqat-w4a8_synth.py')
SHORT = ['--cfg-options', 'train_dataloader.dataset.indices=12', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=5',
         'calib_batches=2', 'train_dataloader.persistent_workers=False']


@pytest.mark.slow
@pytest.mark.skipif(not osp.isfile(osp.join(ROOT, 'data', 'nuscenes_synth', 'nuscenes_infos_train.pkl')),
                    reason='needs the quick-start data set (bash tools/quickstart_data.sh)')
def test_bevdet_tiny_ptqat_deterministic_runs_are_bit_identical(tmp_path):
    """BEVDet-tiny PTQAT (calibration, selection, 3 iterations of batch 4), two processes with
    --deterministic: identical weights. Without the mode two such runs differed after the first
    optimizer step on this project's CPU machine (README, Reproducibility)."""
    os.chdir(ROOT)
    for i in range(2):
        _train(BEVDET, tmp_path / f'run{i}', '--deterministic', *SHORT)
    assert _state_hash(tmp_path / 'run0' / 'epoch_1.pth') == _state_hash(tmp_path / 'run1' / 'epoch_1.pth')
