"""tools/quickstart.sh's occupancy and map segmentation modes are wired (no training is run):
``PTQAT_DRY_RUN=1`` prints what a mode would run; the FP config it names builds, the committed FP
checkpoint loads into it with every key, the quantized configs exist and build, the data root is
the config's own (the occupancy set in its own folder, with the Occ3D labels), and a
``PTQAT_DATA`` elsewhere is applied to every data root of the config."""
import os
import os.path as osp
import subprocess

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'quickstart.sh')
DENSE = {  # mode: (data folder, metric evaluator)
    'bevdet-occ': ('data/nuscenes_synth_occ', 'Occ3DMetric'),
    'bevdet-seg': ('data/nuscenes_synth', 'BEVMapSegMetric'),
}


def _dry_run(mode, **env):
    env = dict(os.environ, PTQAT_MODEL=mode, PTQAT_DRY_RUN='1',
               PYTHONPATH=osp.join(ROOT, 'projects'), **env)
    r = subprocess.run(['bash', SCRIPT], env=env, capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        if '=' in line and not line.startswith('synthetic nuScenes'):
            k, v = line.split('=', 1)
            out.setdefault(k, []).append(v)
    return out


def _data_roots(cfg):
    """Every data root the config reads files from."""
    roots = []
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[name].dataset
        roots.append(ds.data_root)
        roots += [t['data_root'] for t in ds.pipeline if 'data_root' in t]
    return roots


@pytest.mark.parametrize('mode', sorted(DENSE))
def test_dense_mode_names_configs_and_checkpoint_that_fit(mode):
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    folder, metric = DENSE[mode]
    s = _dry_run(mode)
    assert s['fp_config'] == [f'configs/{mode}/{mode}-tiny_synth.py']
    # the default data root is the one the config reads (no overrides needed) ...
    assert s['data'] == s['config_data'] == [osp.join(ROOT, folder)]
    assert 'data_option' not in s
    fp_cfg = Config.fromfile(osp.join(ROOT, s['fp_config'][0]))
    assert set(_data_roots(fp_cfg)) == {folder + '/'}
    # ... and has the occupancy labels only where the model needs them
    assert ('--no-occupancy' in s['data_flags'][0]) == (mode != 'bevdet-occ')
    assert fp_cfg.test_evaluator.type == metric
    # the committed FP checkpoint is the FP config's model, key for key
    ckpt = s['fp_checkpoint'][0]
    assert ckpt == osp.join(ROOT, 'checkpoints', f'{mode}-tiny_synth_fp16.pth')
    model = MODELS.build(fp_cfg.model)
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert set(state) == set(model.state_dict())
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    # the four W4A8 variants, each a quantized build of the same model on the same data
    variants = [osp.basename(p) for p in s['quant_config']]
    assert variants == [f'{mode}-tiny_{v}-w4a8_synth.py' for v in ('ptq', 'qat', 'ptqat', 'ptqat-large')]
    for path in s['quant_config']:
        cfg = Config.fromfile(osp.join(ROOT, path))
        assert cfg.model.type == 'PTQATModel' and cfg.model.model.type == fp_cfg.model.type
        assert set(_data_roots(cfg)) == {folder + '/'} and cfg.test_evaluator.type == metric
    MODELS.build(Config.fromfile(osp.join(ROOT, s['quant_config'][2])).model)


@pytest.mark.parametrize('mode', sorted(DENSE))
def test_dense_mode_points_every_data_root_at_ptqat_data(mode, tmp_path):
    data = str(tmp_path / 'elsewhere')
    s = _dry_run(mode, PTQAT_DATA=data, PTQAT_TRAIN_FP='1')  # (no checkpoint needed here)
    assert s['data'] == [data]
    cfg = Config.fromfile(osp.join(ROOT, s['fp_config'][0]))
    cfg.merge_from_dict(dict(kv.split('=', 1) for kv in s['data_option']))
    assert set(_data_roots(cfg)) == {data + '/'}
    assert not osp.exists(data)  # a dry run makes nothing


def test_unknown_mode_lists_the_dense_ones():
    env = dict(os.environ, PTQAT_MODEL='bevdet-det', PTQAT_DRY_RUN='1')
    r = subprocess.run(['bash', SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert 'PTQAT_MODEL=bevdet-det is not supported' in r.stderr
    assert 'bevdet-occ or bevdet-seg' in r.stderr


@pytest.mark.parametrize('mode', sorted(DENSE))
def test_dense_mode_refuses_a_folder_it_did_not_write(mode, tmp_path):
    """PTQAT_DATA pointing at someone's non-empty folder is refused before any work (not a dry
    run: the real path stops there) and left as it was."""
    data = tmp_path / 'my_nuscenes'
    data.mkdir()
    (data / 'notes.txt').write_text('my own data')
    env = dict(os.environ, PTQAT_MODEL=mode, PTQAT_DATA=str(data), PTQAT_SKIP_SETUP='1',
               PTQAT_TRAIN_FP='1', PYTHONPATH=osp.join(ROOT, 'projects'))
    r = subprocess.run(['bash', SCRIPT, str(tmp_path / 'work')], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and f'refusing to use {data}' in r.stderr
    assert sorted(os.listdir(data)) == ['notes.txt'] and not (tmp_path / 'work').exists()
