"""tools/ptqat_study.py on the toy detector (real Runner, tools/train.py + tools/test.py in-process):
outputs, resumability, bad input. No timing."""
import csv
import json
import os.path as osp
import sys

import pytest
from tool_loader import load_tool

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
ENGINE_TESTS = osp.join(ROOT, 'tests', 'engine')
BASES = osp.join(ROOT, 'configs', 'ptqat', '_base_')

FP_CONFIG = '''
custom_imports = dict(imports=['ptqat_toys'], allow_failed_imports=False)
default_scope = 'mmdet3d'
model = dict(type='PTQATToyDetector', data_preprocessor=dict(type='BaseDataPreprocessor'))
_loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='pseudo_collate'),
               dataset=dict(type='PTQATToyDataset', num_samples=16))
train_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=True))
test_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='PTQATToyMetric')
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
train_cfg = dict(by_epoch=False, max_iters=2)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
log_level = 'WARNING'
'''
CONFIG = '''
_base_ = [{fp!r}, {w4a8!r}, {ptqat!r}]
model = dict(_delete_=True, type='PTQATModel', model=_base_.model, quantization=_base_.quantization)
custom_hooks = [dict(type='ResourceUsageHook', warmup=0), dict(_base_.ptqat_hook, calib_batches=2)]
load_from = {ckpt!r}
'''
VARIANTS = ['ptq', 'qat', 'ptqat', 'ptqat-auto']


@pytest.fixture
def config(tmp_path, monkeypatch, fp_ckpt):
    monkeypatch.syspath_prepend(ENGINE_TESTS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'fp.py').write_text(FP_CONFIG)
    path = tmp_path / 'toy_ptqat.py'
    path.write_text(CONFIG.format(fp=str(tmp_path / 'fp.py'), w4a8=osp.join(BASES, 'w4a8.py'),
                                  ptqat=osp.join(BASES, 'ptqat.py'), ckpt=fp_ckpt))
    return str(path)


@pytest.fixture(scope='module')
def fp_ckpt(tmp_path_factory):
    import sys
    sys.path.insert(0, ENGINE_TESTS)
    from ptqat_toys import save_fp_checkpoint
    return save_fp_checkpoint(str(tmp_path_factory.mktemp('fp') / 'fp.pth'))


def test_study_outputs_and_resume(config, tmp_path, capsys):
    study = load_tool('ptqat_study')
    out, docs = tmp_path / 'study', tmp_path / 'docs'
    argv = [config, '--variants', *VARIANTS, '--seeds', '0', '1', '--out', str(out), '--docs', str(docs),
            '--metric', 'mse', '--lower-is-better', '--in-process']
    first = study.main(argv)
    printed = capsys.readouterr().out
    assert first['ran'] == 8 and first['skipped'] == 0 and first['failed'] == 0
    assert 'run 8/8: toy_ptqat ptqat-auto seed 1' in printed and 'left' in printed
    doc = json.loads((out / 'results.json').read_text())
    runs = doc['runs']['toy_ptqat']
    assert set(runs) == set(VARIANTS) and all(set(runs[v]) == {'0', '1'} for v in VARIANTS)
    # what each variant trained: PTQ nothing, QAT everything, the ratios their share
    assert all(r['params_trainable'] == 0 for r in runs['ptq'].values())
    assert all(r['layers_selected'] == 6 for r in runs['qat'].values())
    assert all(r['layers_selected'] == 3 for r in runs['ptqat'].values())
    assert all(r['theta'] is not None for r in runs['ptqat-auto'].values())
    qat_params = runs['qat']['0']['params_trainable']
    assert 0 < runs['ptqat']['0']['params_trainable'] < qat_params
    # every run's hook settings are the variant's (not the config's ratio=0.5 small)
    disc = json.loads((out / 'toy_ptqat' / 'ptqat-auto' / 'seed1' / 'discrepancy.json').read_text())
    assert disc['settings']['threshold'] == 'auto' and disc['settings']['seed'] == 1
    assert json.loads((out / 'toy_ptqat' / 'qat' / 'seed0' / 'discrepancy.json').read_text())[
        'settings']['strategy'] == 'all'
    # the seed changes the calibration batches, hence the PTQ model
    assert runs['ptq']['0']['value'] != runs['ptq']['1']['value']
    s = doc['summary']['toy_ptqat']
    for v in VARIANTS:
        vals = [runs[v][k]['value'] for k in ('0', '1')]
        assert s[v]['n'] == 2 and s[v]['mean'] == pytest.approx(sum(vals) / 2)
        assert s[v]['std'] == pytest.approx(abs(vals[0] - vals[1]) / 2 ** 0.5)
        better = sum(runs[v][k]['value'] <= runs['qat'][k]['value'] for k in ('0', '1'))
        assert s[v]['ge_qat'] == better and s[v]['paired_with_qat'] == 2
    md = (docs / 'ptqat_study.md').read_text()
    assert '### toy_ptqat' in md and '| PTQAT (smallest-Dis half, l2) |' in md and '<= QAT (same seed)' in md
    assert f"{s['ptqat']['ge_qat']} / 2" in md
    for png in ('ptqat_study_params.png', 'ptqat_study_ratio.png'):
        assert (docs / png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # the per-seed values behind the table, beside it
    with open(docs / 'ptqat_study_runs.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(VARIANTS)
    for row in rows:
        assert row['config'] == 'toy_ptqat' and row['metric'] == doc['metric']
        assert float(row['value']) == pytest.approx(runs[row['variant']][row['seed']]['value'])

    # resumable: nothing runs again; a missing result is the only run made
    second = study.main(argv)
    assert second['ran'] == 0 and second['skipped'] == 8
    (out / 'toy_ptqat' / 'ptqat' / 'seed1' / 'metrics.json').unlink()
    third = study.main(argv)
    assert third['ran'] == 1 and third['skipped'] == 7
    assert json.loads((out / 'results.json').read_text())['summary']['toy_ptqat']['ptqat']['n'] == 2
    # the shared files are replaced atomically (studies may run side by side): no temporary left
    assert not list(out.rglob('*.tmp')) and not list(out.rglob('*.tmp.json'))
    # other options would mix different studies in one folder: refused
    with pytest.raises(SystemExit, match='holds a study made with'):
        study.main(argv + ['--train-options', 'optim_wrapper.optimizer.lr=0.1'])


def test_paired_differences_on_crafted_runs():
    """a − b seed by seed, over the shared seeds only, both directions of 'better'; the tables show it."""
    study = load_tool('ptqat_study')

    def runs(*vals):
        return {s: dict(value=v, params_trainable=1) for s, v in enumerate(vals)}
    results = {'m': {'qat': runs(0.20, 0.30, 0.25), 'ptqat': runs(0.22, 0.27, 0.25),
                     'ptqat-large': runs(0.10, 0.40), 'ptq': runs(0.1, 0.1, 0.1)}}
    pairs = study.paired_differences(results)['m']
    assert set(pairs) == {'ptqat - ptqat-large', 'qat - ptq'}  # random never ran: no row
    p = pairs['ptqat - ptqat-large']  # seeds 0 and 1 only: +0.12, -0.13
    assert p['n'] == 2 and p['seeds'] == [0, 1] and p['a_at_least_b'] == 1
    assert p['mean'] == pytest.approx(-0.005) and p['std'] == pytest.approx(0.25 / 2 ** 0.5)
    summary = study.summarize(results)
    s = summary['m']
    d = s['ptqat']['minus_qat']  # +0.02, -0.03, 0 (a tie counts as at least as good)
    assert d['mean'] == pytest.approx(-0.01 / 3) and s['ptqat']['ge_qat'] == 2 and s['qat']['minus_qat'] is None
    low = study.paired_differences(results, higher_is_better=False)['m']['ptqat - ptqat-large']
    assert low['a_at_least_b'] == 1 and low['mean'] == pytest.approx(-0.005)
    md = study.markdown(summary, 'NDS', True, paired=study.paired_differences(results))
    assert '| PTQAT (smallest-Dis half, l2) | 0.2467 ± ' in md and '| -0.0033 ± ' in md
    assert '| ptqat - ptqat-large | -0.0050 ± 0.1768 | 1 / 2 |' in md and '| qat - ptq | +0.1500 ± 0.0500 | 3 / 3 |' in md
    tiny = study.markdown(summary, 'NDS', True, paired={'m': {'ptqat - ptqat-large': dict(
        n=2, mean=-1e-6, std=0.001, a_at_least_b=1, seeds=[0, 1], across_machines=0)}})
    assert '| ptqat - ptqat-large | +0.0000 ± 0.0010 | 1 / 2 |' in tiny  # a mean that rounds to 0 has no '-'


def test_every_variant_is_a_valid_hook_setting():
    from ptqat.engine import PTQATHook
    study = load_tool('ptqat_study')
    for name, spec in study.VARIANTS.items():
        if spec['hook'] is None:  # the control fp-ft: no hook, only the seed
            assert spec.get('control') and study.train_options(name, 3, 7) == ['randomness.seed=7']
            continue
        PTQATHook(**spec['hook'])  # raises on an invalid combination
        opts = study.train_options(name, 3, 7)
        assert 'randomness.seed=7' in opts and 'custom_hooks.3.seed=7' in opts
        assert f"custom_hooks.3.strategy={spec['hook']['strategy']}" in opts
    assert set(study.VARIANTS) >= {'ptq', 'qat', 'ptqat', 'ptqat-large', 'random', 'ptqat-r25', 'ptqat-r75',
                                   'ptqat-p25', 'ptqat-p50', 'ptqat-p75', 'ptqat-rms', 'ptqat-relative',
                                   'ptqat-cumulative', 'ptqat-auto'}


def test_fp_finetune_control(config, tmp_path, capsys):
    """fp-ft: the same fine-tuning without quantizers (the config's float model, no PTQATHook),
    only when named; tabulated beside QAT (its "− QAT" is the cost of quantization at equal
    training) and re-tested with --eval-set on its own config."""
    from mmengine.config import Config
    from ptqat.checkpoint_compat import load_local_checkpoint
    study = load_tool('ptqat_study')
    assert 'fp-ft' not in study.parse_args([config]).variants  # a control: not run by default
    out, docs = tmp_path / 'study', tmp_path / 'docs'
    base = [config, '--variants', 'qat', 'fp-ft', '--seeds', '0', '--out', str(out), '--metric', 'mse',
            '--lower-is-better', '--in-process']
    assert study.main(base + ['--docs', str(docs), '--pairs', 'fp-ft:qat'])['ran'] == 2
    run = out / 'toy_ptqat' / 'fp-ft' / 'seed0'
    derived = run / 'fp_config' / 'toy_ptqat_fp-ft.py'
    cfg = Config.fromfile(str(derived))
    assert cfg.model.type == 'PTQATToyDetector'  # the float model the PTQATModel wrapped
    assert [h['type'] for h in cfg.custom_hooks] == ['ResourceUsageHook']
    assert cfg.load_from == Config.fromfile(config).load_from and cfg.train_cfg.max_iters == 2
    record = json.loads((run / 'run.json').read_text())
    assert record['run_config'] == str(derived) and record['train_cfg_options'] == ['randomness.seed=0']
    state = load_local_checkpoint(record['checkpoint'], map_location='cpu')['state_dict']
    assert state and not any('step_size' in k for k in state)  # trained without quantizers
    runs = json.loads((out / 'results.json').read_text())['runs']['toy_ptqat']
    fp, qat = runs['fp-ft']['0'], runs['qat']['0']
    assert fp['params_trainable'] == fp['params_total'] > 0 and fp['layers_selected'] is None
    assert fp['value'] != qat['value']
    md = (docs / 'ptqat_study.md').read_text()
    assert '| FP fine-tuned (control, no quantization) |' in md and '| fp-ft - qat |' in md
    # --eval-set tests its checkpoint with its own (float) config
    bigger = ['--eval-set', 'big', '--test-options', 'test_dataloader.dataset.num_samples=24']
    assert study.main(base + bigger)['ran'] == 2
    assert (run / 'metrics_big.json').is_file()
    capsys.readouterr()
    study.main(['--list-variants'])
    printed = capsys.readouterr().out
    assert 'fp-ft' in printed and '(only when named)' in printed


def test_fp_finetune_control_needs_a_ptqat_model(tmp_path):
    """fp-ft on a config whose model is not a PTQATModel wrapping a float model is refused."""
    study = load_tool('ptqat_study')
    path = tmp_path / 'plain.py'
    path.write_text("model = dict(type='Toy')\ncustom_hooks = [dict(type='PTQATHook')]\n")
    with pytest.raises(SystemExit, match="fp-ft: the model of .* is 'Toy', not a PTQATModel"):
        study.float_finetune_config(str(path), str(tmp_path / 'run'))


def test_bad_arguments(config, tmp_path):
    study = load_tool('ptqat_study')
    with pytest.raises(SystemExit, match=r"unknown variant\(s\) \['best'\]"):
        study.main([config, '--variants', 'best', '--out', str(tmp_path / 'o')])
    with pytest.raises(SystemExit, match='config file\\(s\\) not found'):
        study.main(['nope.py', '--out', str(tmp_path / 'o')])
    with pytest.raises(SystemExit, match='seeds must be distinct'):
        study.main([config, '--seeds', '1', '1', '--out', str(tmp_path / 'o')])
    with pytest.raises(SystemExit, match="'randomness.seed=3' is set by the study itself"):
        study.main([config, '--train-options', 'randomness.seed=3', '--out', str(tmp_path / 'o')])
    (tmp_path / 'float.py').write_text("_base_ = ['fp.py']\n")
    with pytest.raises(SystemExit, match='has no PTQATHook in custom_hooks'):
        study.main([str(tmp_path / 'float.py'), '--out', str(tmp_path / 'o2')])


def test_eval_set_retests_finished_runs_only(config, tmp_path, capsys):
    """--eval-set tests the finished runs' checkpoints again with extra test options (here another
    toy test set) into metrics_NAME.json, trains nothing, resumes, and refuses mixed options."""
    study = load_tool('ptqat_study')
    out = tmp_path / 'study'
    base = [config, '--variants', 'ptq', 'ptqat', '--seeds', '0', '--out', str(out), '--metric', 'mse',
            '--lower-is-better', '--in-process']
    study.main(base)
    (out / 'toy_ptqat' / 'ptqat' / 'seed0' / 'metrics.json').unlink()  # an unfinished run
    bigger = ['--eval-set', 'big', '--test-options', 'test_dataloader.dataset.num_samples=24']
    capsys.readouterr()
    first = study.main(base + bigger + ['--docs', str(tmp_path / 'docs'), '--name', 'big'])
    printed = capsys.readouterr().out
    assert first['ran'] == 1 and first['skipped'] == 0 and "(1 runs unfinished)" in printed
    ptq = out / 'toy_ptqat' / 'ptq' / 'seed0'
    assert (ptq / 'metrics_big.json').is_file() and not (out / 'toy_ptqat' / 'ptqat' / 'seed0' / 'metrics_big.json').exists()
    assert not (out / 'toy_ptqat' / 'ptqat' / 'seed0' / 'metrics.json').exists()  # trained nothing
    own = study.pick_metric(json.loads((ptq / 'metrics.json').read_text()), 'mse')
    other = study.pick_metric(json.loads((ptq / 'metrics_big.json').read_text()), 'mse')
    assert own != other  # 24 samples instead of 16: another value of the same checkpoint
    doc = json.loads((out / 'results_big.json').read_text())
    assert doc['eval_set'] == 'big' and doc['runs']['toy_ptqat']['ptq']['0']['value'] == pytest.approx(other)
    assert json.loads((out / 'results.json').read_text())['runs']['toy_ptqat']['ptq']['0']['value'] == \
        pytest.approx(own)  # the study's own results are left alone
    assert "the evaluation set 'big'" in (tmp_path / 'docs' / 'big.md').read_text()
    # resumable; other options under the same name are refused; a bad name or no options too
    assert study.main(base + bigger)['ran'] == 0
    with pytest.raises(SystemExit, match="holds the evaluation 'big' made with"):
        study.main(base + ['--eval-set', 'big', '--test-options', 'test_dataloader.dataset.num_samples=20'])
    with pytest.raises(SystemExit, match="--eval-set 'a/b': use letters"):
        study.main(base + ['--eval-set', 'a/b', '--test-options', 'x=1'])
    with pytest.raises(SystemExit, match='--eval-set needs --test-options'):
        study.main(base + ['--eval-set', 'big'])
    with pytest.raises(SystemExit, match='give its --train-options and --deterministic'):
        study.main(base + bigger + ['--deterministic'])


def test_common_class_nds_metric_on_crafted_detection_runs(config, tmp_path):
    """--metric NDS-common: the runs' NDS with the TP errors over the classes every run of the
    config detects; a trailer crossing the recall threshold in one run moves its NDS, not this."""
    sys.path.insert(0, osp.join(ROOT, 'tests', 'evaluation'))
    from metric_samples import NUSCENES_PREFIX, nuscenes_detection_metrics
    study = load_tool('ptqat_study')
    out = tmp_path / 'study'
    common = ['car', 'truck', 'bus', 'pedestrian', 'traffic_cone']
    crafted = {('qat', 0): common + ['trailer'], ('qat', 1): common, ('ptqat', 0): common,
               ('ptqat', 1): common + ['bicycle']}
    for (variant, seed), detected in crafted.items():
        run = out / 'toy_ptqat' / variant / f'seed{seed}'
        run.mkdir(parents=True)
        metrics = nuscenes_detection_metrics(detected, seed=0, tp_error=0.4, ap_classes=common)
        (run / 'metrics.json').write_text(json.dumps(metrics))
    argv = [config, '--variants', 'qat', 'ptqat', '--seeds', '0', '1', '--out', str(out), '--summarize-only']
    nds = study.main(argv)['summary']['toy_ptqat']
    assert nds['qat']['max'] - nds['qat']['min'] > 0.03  # the trailer's seed 0 stands out in NDS
    docs = tmp_path / 'docs'
    by_common = study.main(argv + ['--metric', 'NDS-common', '--docs', str(docs), '--name', 'c'])['summary']
    runs = json.loads((out / 'results.json').read_text())
    assert runs['common_classes'] == {'toy_ptqat': common}
    # the same APs and errors on the common classes in every run: one value
    for variant in ('qat', 'ptqat'):
        for seed in (0, 1):
            b = json.loads((out / 'toy_ptqat' / variant / f'seed{seed}' / 'metrics.json').read_text())
            expected = (5 * b[NUSCENES_PREFIX + 'mAP'] + 5 * 0.6) / 10
            assert runs['runs']['toy_ptqat'][variant][str(seed)]['value'] == pytest.approx(expected)
    assert by_common['toy_ptqat']['qat']['std'] == pytest.approx(0, abs=1e-12)
    assert by_common['toy_ptqat']['ptqat']['mean'] == pytest.approx(by_common['toy_ptqat']['qat']['mean'])
    assert 'classes above 10 % recall in all its runs (car, truck, bus, pedestrian, traffic_cone)' in \
        (docs / 'c.md').read_text()
    with pytest.raises(SystemExit, match='higher-is-better'):
        study.main(argv + ['--metric', 'NDS-common', '--lower-is-better'])
    # its runs CSV holds every run's per-class metrics: imported into an empty OUT, the same tables
    imported = study.main([config, '--variants', 'qat', 'ptqat', '--seeds', '0', '1', '--out', str(tmp_path / 'o2'),
                           '--summarize-only', '--metric', 'NDS-common', '--import-runs', str(docs / 'c_runs.csv'),
                           '--docs', str(docs), '--name', 'c2'])['summary']
    assert imported['toy_ptqat']['ptqat']['mean'] == pytest.approx(by_common['toy_ptqat']['ptqat']['mean'], abs=1e-12)
    assert json.loads((tmp_path / 'o2' / 'results.json').read_text())['common_classes'] == {'toy_ptqat': common}
    # so does the plain NDS runs CSV (it keeps each run's per-class metrics too), also when grown by import
    study.main(argv + ['--docs', str(docs), '--name', 'n'])
    study.main([config, '--variants', 'qat', 'ptqat', '--seeds', '0', '1', '--out', str(tmp_path / 'o5'),
                '--summarize-only', '--import-runs', str(docs / 'n_runs.csv'), '--docs', str(docs), '--name', 'n2'])
    from_nds = study.main([config, '--variants', 'qat', 'ptqat', '--seeds', '0', '1', '--out', str(tmp_path / 'o6'),
                           '--summarize-only', '--metric', 'NDS-common', '--import-runs', str(docs / 'n2_runs.csv')])
    assert from_nds['summary']['toy_ptqat']['ptqat']['mean'] == pytest.approx(by_common['toy_ptqat']['ptqat']['mean'],
                                                                              abs=1e-12)
    # grown in a new OUT by a run where the truck falls under 10 % recall: the imported runs'
    # common classes shrink with it
    run = tmp_path / 'o4' / 'toy_ptqat' / 'ptq' / 'seed0'
    run.mkdir(parents=True)
    no_truck = [c for c in common if c != 'truck']
    (run / 'metrics.json').write_text(json.dumps(nuscenes_detection_metrics(no_truck, seed=0, tp_error=0.4,
                                                                            ap_classes=no_truck)))
    grown = study.main([config, '--variants', 'ptq', 'qat', 'ptqat', '--seeds', '0', '1', '--out',
                        str(tmp_path / 'o4'), '--summarize-only', '--metric', 'NDS-common',
                        '--import-runs', str(docs / 'c2_runs.csv')])
    assert json.loads((tmp_path / 'o4' / 'results.json').read_text())['common_classes'] == {'toy_ptqat': no_truck}
    assert grown['summary']['toy_ptqat']['qat']['n'] == 2 and grown['summary']['toy_ptqat']['ptq']['n'] == 1
    # a runs CSV without the per-class metrics (as written before them) is refused for NDS-common
    with (docs / 'c_runs.csv').open(newline='') as f:
        rows = list(csv.DictReader(f))
    with (tmp_path / 'bare.csv').open('w', newline='') as f:
        w = csv.DictWriter(f, [k for k in rows[0] if k != 'nds_metrics'], extrasaction='ignore')
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(SystemExit, match=r"line 2: .*NDS-common rows can be imported only from runs CSVs"):
        study.main(argv + ['--metric', 'NDS-common', '--out', str(tmp_path / 'o3'),
                           '--import-runs', str(tmp_path / 'bare.csv')])
    # a cell written as JSON that is not JSON names its line and column
    for column in ('nds_metrics', 'train_options'):
        with (tmp_path / 'broken.csv').open('w', newline='') as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows([dict(rows[0], **{column: '{not json'}), *rows[1:]])
        with pytest.raises(SystemExit, match=rf"line 2: {column} is not JSON"):
            study.main(argv + ['--metric', 'NDS-common', '--out', str(tmp_path / 'o3'),
                               '--import-runs', str(tmp_path / 'broken.csv')])
    (out / 'toy_ptqat' / 'qat' / 'seed1' / 'metrics.json').write_text(json.dumps({'mse': 0.1}))
    with pytest.raises(SystemExit, match=r'qat/seed1/metrics.json: no NDS'):
        study.main(argv + ['--metric', 'NDS-common'])


def test_import_runs_grows_a_study_after_its_run_directories_are_gone(config, tmp_path, capsys):
    """--import-runs: the runs of an earlier study's runs CSV are tabulated with new seeds and
    not run again; rows of another metric or other options, or twice, are refused."""
    study = load_tool('ptqat_study')
    docs = tmp_path / 'docs'
    base = ['--variants', 'ptq', 'ptqat', '--metric', 'mse', '--lower-is-better', '--in-process']
    first = study.main([config, *base, '--seeds', '0', '--out', str(tmp_path / 'old'), '--docs', str(docs),
                        '--name', 'old'])
    old_csv = docs / 'old_runs.csv'
    rows = list(csv.DictReader(old_csv.open()))
    assert [r['train_options'] for r in rows] == ['[]', '[]'] and rows[0]['deterministic'] == 'false'
    assert {r['machine'] for r in rows} == {study.machine_fingerprint()}  # e.g. '... 25/1/1, AVX2, torch 2.13.0'
    # the old run directories are gone: seeds 0-1 into a new OUT run only seed 1's two runs
    grown = study.main([config, *base, '--seeds', '0', '1', '--out', str(tmp_path / 'new'), '--docs', str(docs),
                        '--name', 'new', '--import-runs', str(old_csv)])
    assert grown['ran'] == 2 and grown['skipped'] == 2
    assert not (tmp_path / 'new' / 'toy_ptqat' / 'ptq' / 'seed0').exists()
    assert 'tabulating 4 runs: 2 from' in capsys.readouterr().out
    for variant in ('ptq', 'ptqat'):
        s = grown['summary']['toy_ptqat'][variant]
        assert s['n'] == 2 and s['seeds'] == [0, 1]
        old = first['summary']['toy_ptqat'][variant]['mean']
        assert old in (s['min'], s['max'])  # seed 0's value is the imported one
    assert len(list(csv.DictReader((docs / 'new_runs.csv').open()))) == 4
    assert '`old_runs.csv` (`--import-runs`)' in (docs / 'new.md').read_text()
    assert f'Machine: {study.machine_fingerprint()}.' in (docs / 'new.md').read_text()
    results = json.loads((tmp_path / 'new' / 'results.json').read_text())
    assert results['runs']['toy_ptqat']['ptq']['0']['imported'] == str(old_csv)
    # a run found both ways keeps the run directory's value and reports the difference
    changed = old_csv.read_text().replace(rows[0]['value'], '123.0', 1)
    (tmp_path / 'changed.csv').write_text(changed)
    again = study.main([config, *base, '--seeds', '1', '--out', str(tmp_path / 'new'), '--summarize-only',
                        '--import-runs', str(tmp_path / 'changed.csv')])
    assert again['summary']['toy_ptqat']['ptq']['n'] == 1
    printed = capsys.readouterr().out
    assert 'imported run(s) outside this call' in printed
    new_rows = list(csv.DictReader((docs / 'new_runs.csv').open()))
    seed1 = next(r for r in new_rows if r['variant'] == 'ptq' and r['seed'] == '1')
    (tmp_path / 'seed1.csv').write_text((docs / 'new_runs.csv').read_text().replace(seed1['value'], '7.5'))
    kept = study.main([config, *base, '--seeds', '1', '--out', str(tmp_path / 'new'), '--summarize-only',
                       '--import-runs', str(tmp_path / 'seed1.csv')])
    assert kept['summary']['toy_ptqat']['ptq']['mean'] == pytest.approx(float(seed1['value']))
    assert "ptq seed 1: the run directory has" in capsys.readouterr().out
    # refusals: other options, another metric, twice, NDS-common, a CSV of something else
    with pytest.raises(SystemExit, match=r"line 2: made with deterministic=False, this call has True"):
        study.main([config, *base, '--seeds', '0', '--out', str(tmp_path / 'det'), '--deterministic',
                    '--summarize-only', '--import-runs', str(old_csv)])
    with pytest.raises(SystemExit, match=r"line 2: metric 'mse', but this call tabulates 'NDS'"):
        study.main([config, '--variants', 'ptq', '--seeds', '0', '--out', str(tmp_path / 'new'),
                    '--summarize-only', '--import-runs', str(old_csv)])
    with pytest.raises(SystemExit, match=r"is in both .*old_runs.csv and .*changed.csv"):
        study.main([config, *base, '--seeds', '0', '--out', str(tmp_path / 'new'), '--summarize-only',
                    '--import-runs', str(old_csv), str(tmp_path / 'changed.csv')])
    with pytest.raises(SystemExit, match=r"line 2: metric 'mse', but this call tabulates 'NDS-common'"):
        study.main([config, '--metric', 'NDS-common', '--out', str(tmp_path / 'new'), '--summarize-only',
                    '--import-runs', str(old_csv)])
    (tmp_path / 'other.csv').write_text('a,b\n1,2\n')
    with pytest.raises(SystemExit, match=r"not a runs CSV of this tool \(no column\(s\) \['config'"):
        study.main([config, *base, '--out', str(tmp_path / 'new'), '--summarize-only',
                    '--import-runs', str(tmp_path / 'other.csv')])
    with pytest.raises(SystemExit, match='no such file'):
        study.main([config, *base, '--out', str(tmp_path / 'new'), '--summarize-only',
                    '--import-runs', str(tmp_path / 'nope.csv')])


def test_imported_runs_are_listed_in_plan_order():
    """A variant found only in an imported runs CSV is listed where the plan puts it, not after
    the variants that ran locally (the runs CSV of a grown study reads as one run locally)."""
    study = load_tool('ptqat_study')
    merged = {'toy': {'ptqat': {1: {'value': 2.0}, 0: {'value': 3.0}}, 'ptq': {0: {'value': 1.0}}}}
    plan = [(c, v, s) for c in ['cfgs/toy.py'] for v in ['ptq', 'ptqat'] for s in [0, 1]]
    ordered = study.in_plan_order(merged, plan)
    assert [(v, s) for v, per in ordered['toy'].items() for s in per] == [('ptq', 0), ('ptqat', 0), ('ptqat', 1)]
    assert ordered['toy']['ptqat'][0] is merged['toy']['ptqat'][0]


def test_import_runs_reads_a_csv_from_before_the_option_columns(config, tmp_path, capsys):
    """The runs CSVs committed before the option columns (RUN_COLUMNS only) are taken on trust,
    with a printed note; a bad number names its line."""
    study = load_tool('ptqat_study')
    header = ','.join(study.RUN_COLUMNS)
    (tmp_path / 'old.csv').write_text(header + '\ntoy_ptqat,qat,3,NDS,0.25,1000,2000,7,7,,12.5\n'
                                      'toy_ptqat,ptqat,3,NDS,0.26,400,2000,3,7,0.01,10\n')
    res = study.main([config, '--variants', 'qat', 'ptqat', '--seeds', '3', '--out', str(tmp_path / 'o'),
                      '--summarize-only', '--import-runs', str(tmp_path / 'old.csv'), '--docs', str(tmp_path),
                      '--name', 'd'])
    assert 'predates the option columns' in capsys.readouterr().out
    assert 'Machine: not recorded.' in (tmp_path / 'd.md').read_text()
    s = res['summary']['toy_ptqat']
    assert s['ptqat']['mean'] == pytest.approx(0.26) and s['ptqat']['params_trainable'] == 400
    assert s['ptqat']['minus_qat']['mean'] == pytest.approx(0.01) and s['ptqat']['ge_qat'] == 1
    (tmp_path / 'bad.csv').write_text(header + '\ntoy_ptqat,qat,3,NDS,high,1000,2000,7,7,,12.5\n')
    with pytest.raises(SystemExit, match=r"bad.csv line 2: value='high' is not a number"):
        study.main([config, '--variants', 'qat', '--seeds', '3', '--out', str(tmp_path / 'o'),
                    '--summarize-only', '--import-runs', str(tmp_path / 'bad.csv')])


def test_machine_of_each_run_is_recorded_and_named(tmp_path):
    """run.json / run_<eval>.json carry the machine; a run tested again elsewhere names both, and
    the tables name every machine their runs came from."""
    study = load_tool('ptqat_study')
    run = tmp_path / 'r'
    run.mkdir()
    (run / 'run.json').write_text(json.dumps({'machine': 'A'}))
    for name in ('metrics.json', 'metrics_big.json'):
        (run / name).write_text(json.dumps({'mse': 0.5}))
    assert study.collect_run(str(run), 'mse')['machine'] == 'A'
    assert study.collect_run(str(run), 'mse', 'big')['machine'] == 'trained on A; tested on ?'
    (run / 'run_big.json').write_text(json.dumps({'machine': 'B'}))
    assert study.collect_run(str(run), 'mse', 'big')['machine'] == 'trained on A; tested on B'
    (run / 'run_big.json').write_text(json.dumps({'machine': 'A'}))
    assert study.collect_run(str(run), 'mse', 'big')['machine'] == 'A'
    two = {'c': {'qat': {0: {'machine': 'A'}, 1: {'machine': 'B'}}, 'ptq': {0: {'machine': None}}}}
    assert study.machines_note(two).startswith(' Machines: A (1 runs); B (1 runs); not recorded (1 runs)')
    assert study.machines_note({'c': {'qat': {0: {'machine': 'A'}}}}) == ' Machine: A.'


def test_pairs_across_machines_are_counted_and_shown():
    """A pair whose two runs ran on different machines (or one not recorded) is counted in the
    paired tables, since rounding differs between machines; same-machine pairs are not."""
    study = load_tool('ptqat_study')

    def runs(*machines):
        return {s: dict(value=0.2 + s / 100, params_trainable=1, machine=m) for s, m in enumerate(machines)}
    results = {'m': {'qat': runs('A', 'A', None), 'ptqat': runs('A', 'B', None),
                     'ptqat-large': runs('A', 'B', 'B')}}
    pairs = study.paired_differences(results)['m']
    assert pairs['ptqat - ptqat-large']['across_machines'] == 1  # seed 2: not recorded vs B
    summary = study.summarize(results)
    assert summary['m']['ptqat']['minus_qat']['across_machines'] == 1  # seed 1: B vs A
    assert summary['m']['ptqat-large']['minus_qat']['across_machines'] == 2
    md = study.markdown(summary, 'NDS', True, paired=study.paired_differences(results))
    assert '| 3 / 3 (1 across machines) |' in md
    assert '| ptqat - ptqat-large | +0.0000 ± 0.0000 | 3 / 3 (1 across machines) |' in md
    same = {'m': {'qat': runs('A', 'A'), 'ptqat': runs('A', 'A')}}
    assert 'across' not in study.markdown(study.summarize(same), 'NDS', True, paired=study.paired_differences(same))


def test_extra_pairs_are_tabulated_and_bad_pairs_refused(config, tmp_path, capsys):
    """--pairs A:B adds seed-by-seed rows after the default pairs (into results.json and the md);
    a malformed, unknown, self, repeated or default pair, or one outside --variants, is refused."""
    study = load_tool('ptqat_study')
    out, docs = tmp_path / 'o', tmp_path / 'docs'
    base = [config, '--variants', 'ptq', 'qat', 'ptqat', '--seeds', '0', '1', '--metric', 'mse',
            '--lower-is-better', '--in-process', '--out', str(out)]
    study.main(base)
    capsys.readouterr()
    study.main(base + ['--summarize-only', '--docs', str(docs), '--name', 'p', '--pairs', 'ptqat:qat', 'ptq:ptqat'])
    results = json.loads((out / 'results.json').read_text())
    rows = results['paired']['toy_ptqat']
    assert list(rows) == ['qat - ptq', 'ptqat - qat', 'ptq - ptqat']  # defaults first, then in the given order
    runs = results['runs']['toy_ptqat']
    diffs = [runs['ptq'][s]['value'] - runs['ptqat'][s]['value'] for s in ('0', '1')]
    assert rows['ptq - ptqat']['mean'] == pytest.approx(sum(diffs) / 2)
    assert rows['ptq - ptqat']['a_at_least_b'] == sum(d <= 0 for d in diffs)  # lower is better
    assert results['extra_pairs'] == [['ptqat', 'qat'], ['ptq', 'ptqat']]
    md = (docs / 'p.md').read_text()
    assert '| ptqat - qat | ' in md and '| ptq - ptqat | ' in md and '--pairs ptqat:qat ptq:ptqat' in md
    # a pair whose variants never both finished: said, no row
    study.main(base[:2] + ['ptq', 'qat', 'ptqat', 'random'] + base[5:] + ['--summarize-only',
                                                                         '--pairs', 'random:ptq'])
    assert '--pairs random:ptq: no seed where both finished in toy_ptqat; no row' in capsys.readouterr().out
    for bad, message in ((['ptqat-qat'], "'ptqat-qat' is not A:B"), (['a:b:c'], "'a:b:c' is not A:B"),
                         (['ptqat:'], "'ptqat:' is not A:B"),
                         (['ptqat:best'], r"unknown variant\(s\) \['best'\]; allowed: ptq, qat"),
                         (['qat:qat'], 'compares a variant with itself'),
                         (['qat:ptq'], 'listed twice or is a default pair'),
                         (['ptq:qat', 'ptq:qat'], 'listed twice'),
                         (['random:qat'], r"--pairs name\(s\) \['random'\] not in --variants")):
        with pytest.raises(SystemExit, match=message):
            study.main(base + ['--summarize-only', '--pairs', *bad])
