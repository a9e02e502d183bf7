"""Command-line data tools: they work, and bad input exits with a message naming it."""
import json
import os.path as osp

import pytest
from tool_loader import load_tool



def test_make_synthetic_nuscenes_cli(tmp_path, capsys):
    root = str(tmp_path / 'd')
    load_tool('make_synthetic_nuscenes').main([root, '--train-scenes', '1', '--val-scenes', '1',
                                          '--samples-per-scene', '2', '--cam-sweeps', '0',
                                          '--lidar-sweeps', '0', '--image-size', '160', '90',
                                          '--lidar-azimuths', '64', '--no-occupancy'])
    summary = json.loads(capsys.readouterr().out)
    assert summary['samples'] == 4 and summary['val_scenes'] == ['scene-0103']
    assert not osp.exists(osp.join(root, 'gts'))


TINY = ['--train-scenes', '1', '--val-scenes', '1', '--samples-per-scene', '2', '--cam-sweeps', '0',
        '--lidar-sweeps', '0', '--image-size', '160', '90', '--lidar-azimuths', '64', '--no-occupancy']


def test_make_synthetic_nuscenes_refuses_existing_tables(tmp_path, capsys):
    """Issue 10 item 1: a root holding nuScenes tables (here a user's v1.0-trainval, while the
    tool writes v1.0-mini into the same samples/ and maps/) is refused unless --overwrite."""
    tables = tmp_path / 'v1.0-trainval'
    tables.mkdir()
    (tables / 'scene.json').write_text('["the user\'s own scenes"]')
    with pytest.raises(SystemExit, match=r"already holds nuScenes tables \(v1\.0-trainval/scene\.json\)"
                                         r".*make_synthetic_nuscenes\.py --overwrite"):
        load_tool('make_synthetic_nuscenes').main([str(tmp_path)] + TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['v1.0-trainval']
    assert (tables / 'scene.json').read_text() == '["the user\'s own scenes"]'
    load_tool('make_synthetic_nuscenes').main([str(tmp_path), '--overwrite'] + TINY)
    assert json.loads(capsys.readouterr().out)['samples'] == 4
    assert osp.isfile(osp.join(tmp_path, 'v1.0-mini', 'scene.json'))


def test_make_synthetic_nuscenes_bad_input(tmp_path):
    with pytest.raises(SystemExit, match='v1.0-mini has 8 train and 2 val scenes'):
        load_tool('make_synthetic_nuscenes').main([str(tmp_path), '--train-scenes', '20'])


def test_create_data_bad_root(tmp_path):
    with pytest.raises(SystemExit, match=r"create_data: .* lacks the nuScenes tables"):
        load_tool('create_data').main(['nuscenes', '--root-path', str(tmp_path), '--version', 'v1.0-mini'])


def test_create_data_unknown_version_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_tool('create_data').main(['nuscenes', '--root-path', str(tmp_path), '--version', 'v9'])
    assert "invalid choice: 'v9'" in capsys.readouterr().err


def test_check_dataset_needs_infos(synthetic_root, tmp_path):
    with pytest.raises(SystemExit, match='run tools/create_data.py first'):
        load_tool('check_dataset').main([synthetic_root[0], '--ann-file', 'missing.pkl'])


def test_check_dataset_table(synthetic_root, tmp_path):
    out = tmp_path / 'table.md'
    load_tool('check_dataset').main([synthetic_root[0], '--out', str(out)])
    rows = out.read_text().splitlines()
    nds = [float(r.split('|')[2]) for r in rows[2:]]
    maps = [float(r.split('|')[3]) for r in rows[2:]]
    assert rows[2].startswith('| ground truth |')
    assert nds[0] == pytest.approx(1.0, abs=1e-4) and maps[0] == pytest.approx(1.0, abs=1e-6)
    assert nds[0] > nds[1] > nds[2]
