"""tools/quickstart_data.sh, the quick start's data step: it never deletes a folder it did not write
(issue 10 item 1), and reuses or remakes only its own (stamped) data."""
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'quickstart_data.sh')
FLAGS = ('--version v1.0-mini --train-scenes 1 --val-scenes 1 --samples-per-scene 2 --cam-sweeps 0 '
         '--lidar-sweeps 0 --no-occupancy --lidar-azimuths 64')


def _run(data, log, flags=FLAGS, python='/bin/false', check=False):
    """Run the data step; ``python`` /bin/false proves that no generation is attempted."""
    env = dict(os.environ, PY=python, PYTHONPATH=osp.join(ROOT, 'projects'))
    args = ['bash', SCRIPT] + (['--check'] if check else []) + [str(data), str(log), flags]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def _tree(path):
    """{relative path: bytes} of every file under ``path``."""
    out = {}
    for d, _, files in os.walk(path):
        for f in files:
            with open(osp.join(d, f), 'rb') as fh:
                out[osp.relpath(osp.join(d, f), path)] = fh.read()
    return out


@pytest.mark.parametrize('check', [False, True])
def test_user_folder_is_refused_and_kept(tmp_path, check):
    data = tmp_path / 'my_nuscenes'
    (data / 'v1.0-trainval').mkdir(parents=True)
    (data / 'v1.0-trainval' / 'scene.json').write_text('[]')
    (data / 'notes.txt').write_text('my own data')
    before = _tree(data)
    r = _run(data, tmp_path / 'log', check=check)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f'refusing to use {data}: the folder is not empty and the quick start did not write it' in r.stderr
    assert '.ptqat-data-flags' in r.stderr and 'Set PTQAT_DATA to a new or empty folder' in r.stderr
    # the suggested folder is a new one, never the refused folder itself
    assert f'PTQAT_DATA={data}_quickstart bash tools/quickstart.sh' in r.stderr
    assert _tree(data) == before
    assert not (tmp_path / 'log').exists()


def test_the_suggested_folder_skips_a_taken_sibling(tmp_path):
    data = tmp_path / 'nuscenes_synth'
    data.mkdir()
    (data / 'notes.txt').write_text('my own data')
    taken = tmp_path / 'nuscenes_synth_quickstart'
    taken.mkdir()
    (taken / 'other.txt').write_text('also mine')
    r = _run(data, tmp_path / 'log', check=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f'PTQAT_DATA={data}_quickstart2 bash tools/quickstart.sh' in r.stderr
    assert (taken / 'other.txt').read_text() == 'also mine'


def test_a_file_is_refused(tmp_path):
    path = tmp_path / 'data'
    path.write_text('x')
    r = _run(path, tmp_path / 'log')
    assert r.returncode == 2 and 'is a file, not a folder' in r.stderr
    assert path.read_text() == 'x'


def test_flags_without_version_are_refused(tmp_path):
    r = _run(tmp_path / 'd', tmp_path / 'log', flags='--train-scenes 1')
    assert r.returncode == 2 and 'lack --version v1.0-mini or --version v1.0-trainval' in r.stderr


def test_own_complete_data_is_reused_without_work(tmp_path):
    data = tmp_path / 'd'
    data.mkdir()
    (data / '.ptqat-data-flags').write_text(FLAGS + '\n')
    (data / 'nuscenes_infos_val.pkl').write_bytes(b'infos')
    r = _run(data, tmp_path / 'log')  # PY=/bin/false: any generation would fail
    assert r.returncode == 0 and 'already at' in r.stdout, r.stderr
    assert (data / 'nuscenes_infos_val.pkl').read_bytes() == b'infos'


@pytest.mark.slow
@pytest.mark.parametrize('state', ['empty', 'other_flags', 'interrupted'])
def test_own_or_empty_folder_is_made(tmp_path, state):
    """An empty folder, or the quick start's own data with other flags or from an interrupted
    run, is (re)made with the real generator and converter, and stamped with the flags."""
    data = tmp_path / 'd'
    data.mkdir()
    if state == 'other_flags':
        (data / '.ptqat-data-flags').write_text('--version v1.0-mini --train-scenes 2\n')
        (data / 'stale.txt').write_text('old')
    elif state == 'interrupted':
        (data / '.ptqat-data-flags').write_text(f'incomplete: {FLAGS}\n')
        (data / 'v1.0-mini').mkdir()
        (data / 'v1.0-mini' / 'scene.json').write_text('[')
    r = _run(data, tmp_path / 'log', python=sys.executable)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (data / '.ptqat-data-flags').read_text() == FLAGS + '\n'
    assert (data / 'nuscenes_infos_val.pkl').is_file() and not (data / 'stale.txt').exists()
    assert (tmp_path / 'log' / 'dataset_summary.json').is_file()
