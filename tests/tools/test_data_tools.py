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
