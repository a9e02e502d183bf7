"""The PTQAT study: every selection strategy of PTQATHook on quantized configs, over seeds.

    python tools/ptqat_study.py configs/ptqat/bevdet/bevdet-tiny_ptqat-w4a8_synth.py \\
        configs/ptqat/bevdepth4d/bevdepth4d-tiny_ptqat-w4a8_synth.py --seeds 0 1 2 3 4 \\
        --out work_dirs/study --docs docs --name ptqat_study

For each CONFIG (a quantized config with a ``PTQATHook`` in ``custom_hooks``, normally the PTQAT
one; its ``load_from`` is the FP model), each VARIANT (below) and each SEED, one run:
``tools/train.py CONFIG --cfg-options <the variant's hook settings> randomness.seed=SEED
custom_hooks.<i>.seed=SEED`` (calibration batches, fine-tuning order and the random selection
follow the seed), then ``tools/test.py`` on its last checkpoint (PTQ: on ``ptq_calibrated.pth``)
with ``--out metrics.json``. Every run has its own directory ``OUT/<config>/<variant>/seed<S>/``;
a run whose ``metrics.json`` exists is skipped, so an interrupted study resumes where it stopped
(``--rerun`` forces the runs again). Runs go one after the other, each in a fresh process
(``--in-process`` calls the tools in this process instead: for tests). Two studies may run side
by side into one OUT with the same options on different seeds or variants (the files they
share are replaced atomically; a ``--summarize-only`` call over all the seeds afterwards
writes the complete tables), never on the same run. Progress (run k of n, elapsed, estimated
time left) goes to stdout.

Variants (``--variants``, default all but the control ``fp-ft``; ``--list-variants`` prints them):

* ``ptq`` (``strategy='none'``), ``qat`` (``'all'``, ``train_unquantized=True`` as the QAT
  configs), ``ptqat`` (``'small'``, ratio 0.5 of the layers, l2: the paper's), ``ptqat-large``,
  ``random`` (ratio 0.5, drawn with the seed);
* ``ptqat-r25``/``r75`` (ratio 0.25 / 0.75 of the layers), ``ptqat-p25``/``p50``/``p75`` (of the
  parameters, ``ratio_by='params'``); ``large-p50`` and ``random-p50`` (the same share of
  parameters, so the three strategies train as many weights);
* ``ptqat-rms``, ``ptqat-relative`` (other discrepancy metrics), ``ptqat-cumulative``
  (``mode='cumulative'``);
* ``ptqat-auto`` (``threshold='auto'``, the knee), ``ptqat-auto-log`` (``auto_rule='knee-log'``);
* the control ``fp-ft``, run only when named: the same fine-tuning without quantization (CONFIG
  with its ``PTQATModel``'s float model and without its ``PTQATHook``: same data, schedule,
  optimizer, ``load_from`` and seed; :func:`float_finetune_config` writes that config into the
  run directory). Where the fine-tuning still improves the FP model (an undertrained one), a
  variant's gain over PTQ mixes quantization recovery with further training; ``fp-ft`` measures
  the second (its "− QAT" column is the cost of quantization at equal training).

Outputs: ``OUT/results.json`` (every run: metric, trainable parameters, wall time) and, with
``--docs DIR``, ``DIR/<name>.md`` (per config and variant: mean ± sample std over the seeds,
min-max, trainable parameters, and in how many seeds the variant scored >= QAT),
``DIR/<name>_params.png`` (metric vs trainable parameters per strategy, the paper's Figure 1
view), ``DIR/<name>_ratio.png`` (metric vs ratio) and ``DIR/<name>_runs.csv`` (every finished
run, one row: ``RUN_COLUMNS``). The paired table compares variants seed by seed (a − b, same
calibration batches and data order) for the default pairs ``PAIRS`` and any ``--pairs A:B ...``
added (both must be in ``--variants``; a pair with no seed both finished is reported, no row).
``--metric`` is matched as a suffix of the metric names (default ``NDS``); ``--lower-is-better``
for metrics such as a loss.
``--metric NDS-common`` tabulates NDS with the five TP errors averaged over only the classes
above nuScenes' 10 % recall threshold in every run of the config: on a weak detector a rare
class crossing that threshold moves NDS by up to ~0.05 (its TP errors drop from the penalty 1.0),
which can decide a ranking (``tools/nds_breakdown.py`` shows it run by run).
``--train-options`` are extra ``--cfg-options`` for every training run (e.g. a shorter schedule),
``--test-options`` for every test run, ``--deterministic`` runs both tools in their deterministic
mode (bit-identical reruns on the same machine); these are part of the study's identity: a
directory made with other options is refused instead of mixed in (``OUT/study.json``).

``--import-runs CSV ...`` takes finished runs from runs CSVs written earlier (by ``--docs``, on
this or another machine) for the (config, variant, seed) that have no finished run in OUT, so a
study grows by new seeds or variants after its run directories are gone: those runs are not run
again, they are tabulated with the new ones (a run found both ways keeps the run directory's
value, and a different value is reported). Each row must be of ``--metric`` and, where the CSV
records them, made with this call's ``--train-options``, ``--test-options``,
``--deterministic`` and ``--eval-set`` (else refused); a CSV from before those columns is
taken on trust (printed). ``NDS`` and ``NDS-common`` runs CSVs also hold each run's per-class
metrics (``nds_metrics``), so ``--metric NDS-common`` can import either and recomputes the
common classes and every value over the grown set; rows without that column (CSVs written
before it) are refused for ``NDS-common``. Every run records the machine it ran on
(:func:`machine_fingerprint`: CPU, the instruction set of torch's kernels, torch version) in
``run.json`` (``run_<NAME>.json`` for an
``--eval-set`` test), the runs CSV carries it, and the tables' header names every machine their
runs came from: ``--deterministic`` reruns are bit-identical only on the same kind of machine.

``--eval-set NAME --test-options ...`` trains nothing: it tests every finished run's checkpoint
again with the run's own test options plus these (e.g. a larger val set: the data root and
annotation file), writes ``metrics_NAME.json`` beside the run's ``metrics.json``, and tabulates
from those (``OUT/results_NAME.json``; with ``--docs``, the same tables and plots). Resumable in
the same way; ``OUT/eval_NAME.json`` records the options, and another set of options under the
same NAME is refused.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import os.path as osp
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
# --metric NDS-common: NDS with the TP errors over the classes above 10 % recall in every run of
# the config (ptqat.evaluation.nds_breakdown); the other metric names are matched in metrics.json
COMMON_NDS = 'NDS-common'

# name -> (label, group, x for the ratio plot, PTQATHook settings). Settings not named keep the
# config's (calib_batches, freeze_bn_stats, ...); these keys are always set, so every variant is
# fully specified whatever the config's hook says.
_BASE = dict(strategy='small', ratio=None, threshold=None, metric='l2', mode='local', ratio_by='layers',
             train_unquantized=False, auto_rule=None, param_budget=None)


def _v(label: str, group: str, x: Optional[float], **hook) -> Dict[str, Any]:
    return dict(label=label, group=group, x=x, hook=dict(_BASE, **hook))


VARIANTS: Dict[str, Dict[str, Any]] = {
    'ptq': _v('PTQ (no fine-tuning)', 'ptq', 0.0, strategy='none'),
    'qat': _v('QAT (all layers)', 'qat', 1.0, strategy='all', train_unquantized=True),
    'ptqat': _v('PTQAT (smallest-Dis half, l2)', 'small-layers', 0.5, ratio=0.5),
    'ptqat-large': _v('PTQAT-large (largest-Dis half)', 'large-layers', 0.5, strategy='large', ratio=0.5),
    'random': _v('random half of the layers', 'random-layers', 0.5, strategy='random', ratio=0.5),
    'ptqat-r25': _v('PTQAT, 25 % of the layers', 'small-layers', 0.25, ratio=0.25),
    'ptqat-r75': _v('PTQAT, 75 % of the layers', 'small-layers', 0.75, ratio=0.75),
    'ptqat-p25': _v('PTQAT, 25 % of the parameters', 'small-params', 0.25, ratio=0.25, ratio_by='params'),
    'ptqat-p50': _v('PTQAT, 50 % of the parameters', 'small-params', 0.5, ratio=0.5, ratio_by='params'),
    'ptqat-p75': _v('PTQAT, 75 % of the parameters', 'small-params', 0.75, ratio=0.75, ratio_by='params'),
    'large-p50': _v('PTQAT-large, 50 % of the parameters', 'large-params', 0.5, strategy='large', ratio=0.5,
                    ratio_by='params'),
    'random-p50': _v('random, 50 % of the parameters', 'random-params', 0.5, strategy='random', ratio=0.5,
                     ratio_by='params'),
    'ptqat-rms': _v('PTQAT, rms Dis', 'metric', 0.5, ratio=0.5, metric='rms'),
    'ptqat-relative': _v('PTQAT, relative Dis', 'metric', 0.5, ratio=0.5, metric='relative'),
    'ptqat-cumulative': _v('PTQAT, cumulative l2 Dis', 'metric', 0.5, ratio=0.5, mode='cumulative'),
    'ptqat-auto': _v("PTQAT, threshold='auto' (knee)", 'auto', None, threshold='auto', auto_rule='knee'),
    'ptqat-auto-log': _v("PTQAT, threshold='auto' (knee of log Dis)", 'auto', None, threshold='auto',
                         auto_rule='knee-log'),
    # the control: no quantizers, no PTQATHook (hook None); only when named in --variants
    'fp-ft': dict(label='FP fine-tuned (control, no quantization)', group='fp', x=None, hook=None, control=True),
}
# --variants default: the selection variants (the controls cost runs and answer another question)
DEFAULT_VARIANTS = [name for name, spec in VARIANTS.items() if not spec.get('control')]


# --------------------------------------------------------------------------- set-up
def config_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def ptqat_hook_index(config: str) -> int:
    """Index of the PTQATHook in the config's ``custom_hooks`` (SystemExit when there is none)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    for i, h in enumerate(cfg.get('custom_hooks') or []):
        kind = h.get('type') if isinstance(h, dict) else None
        if kind == 'PTQATHook' or getattr(kind, '__name__', None) == 'PTQATHook':
            return i
    raise SystemExit(f'ptqat_study: {config} has no PTQATHook in custom_hooks (give a quantized ptqat config)')


def _opt(value: Any) -> str:
    return 'None' if value is None else str(value)


def train_options(variant: str, hook_index: int, seed: int) -> List[str]:
    """``--cfg-options`` items of one run (the variant's hook settings and the seed; a control
    without a hook: the seed only)."""
    hook = VARIANTS[variant]['hook']
    if hook is None:
        return [f'randomness.seed={seed}']
    items = [f'custom_hooks.{hook_index}.{k}={_opt(v)}' for k, v in hook.items()]
    items += [f'custom_hooks.{hook_index}.seed={seed}', f'randomness.seed={seed}']
    return items


def float_finetune_config(config: str, run_dir: str) -> str:
    """Write the ``fp-ft`` control's config into ``run_dir/fp_config/`` and return its path:
    ``config`` with ``model`` replaced by the float model its ``PTQATModel`` wraps and without its
    ``PTQATHook``; everything else (data, schedule, optimizer, ``load_from``, other hooks) is
    ``config``'s, so the run differs from QAT only by the quantizers."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    model = cfg.get('model') or {}
    if model.get('type') != 'PTQATModel' or not isinstance(model.get('model'), dict):
        raise SystemExit(f'ptqat_study: fp-ft: the model of {config} is {model.get("type")!r}, not a '
                         "PTQATModel wrapping a float model (model=dict(type='PTQATModel', model=...))")
    index = ptqat_hook_index(config)
    cfg.model = model['model']
    cfg.custom_hooks = [h for i, h in enumerate(cfg.custom_hooks) if i != index]
    folder = osp.join(run_dir, 'fp_config')
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, f'{config_name(config)}_fp-ft.py')
    cfg.dump(path)
    return path


def _last_checkpoint(work: str) -> str:
    path = osp.join(work, 'last_checkpoint')
    if not osp.isfile(path):
        raise RuntimeError(f'no checkpoint was written in {work} (see its log)')
    with open(path) as f:
        return f.read().strip()


def _tool_call(tool: str, argv: List[str], in_process: bool, log: str) -> None:
    if in_process:
        if HERE not in sys.path:
            sys.path.insert(0, HERE)
        import importlib.util
        spec = importlib.util.spec_from_file_location(f'study_{tool}', osp.join(HERE, f'{tool}.py'))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        mod.main(argv)
        return
    with open(log, 'w') as f:
        proc = subprocess.run([sys.executable, osp.join(HERE, f'{tool}.py'), *argv], stdout=f,
                              stderr=subprocess.STDOUT, cwd=os.getcwd())
    if proc.returncode != 0:
        raise RuntimeError(f'tools/{tool}.py failed (exit {proc.returncode}); log: {log}')


def _cpuinfo() -> Dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (empty where there is none)."""
    fields: Dict[str, str] = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(':')
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def machine_fingerprint() -> str:
    """What a deterministic run's bits depend on besides the code, data and seed: the CPU (vendor,
    model name, family / model / stepping), the instruction set torch's kernels use and the torch
    version, e.g. ``AuthenticAMD AMD EPYC 25/1/1, AVX2, torch 2.13.0+cpu``. Two machines with the
    same model name can differ in the rest (README, Reproducibility)."""
    import torch
    info = _cpuinfo()
    cpu = ' '.join(x for x in (info.get('vendor_id'), info.get('model name')) if x) or platform.processor() \
        or platform.machine()
    fms = '/'.join(info.get(k, '?') for k in ('cpu family', 'model', 'stepping'))
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.1
        isa = 'isa ?'
    return f'{cpu} {fms}, {isa}, torch {torch.__version__}'


def run_one(config: str, hook_index: int, variant: str, seed: int, run_dir: str, train_extra: Sequence[str],
            test_extra: Sequence[str], in_process: bool, deterministic: bool = False) -> Dict[str, Any]:
    """Train and test one (config, variant, seed); returns its record (also ``run.json``)."""
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    hook = VARIANTS[variant]['hook']
    run_config = config if hook is not None else float_finetune_config(config, run_dir)
    train_items = train_options(variant, hook_index, seed) + list(train_extra)
    exp = f'study_{config_name(config)}_{variant}_s{seed}_{int(start * 1000) % 10 ** 9}'
    det = ['--deterministic'] if deterministic else []
    train_argv = [run_config, '--work-dir', run_dir, *det, '--cfg-options', *train_items, f'experiment_name={exp}']
    _tool_call('train', train_argv, in_process, osp.join(run_dir, 'train.log'))
    ckpt = (osp.join(run_dir, 'ptq_calibrated.pth') if hook is not None and hook['strategy'] == 'none'
            else _last_checkpoint(run_dir))
    metrics_tmp = _test_checkpoint(run_dir, None, run_config, ckpt, seed, f'{exp}_test', test_extra, deterministic,
                                   in_process)
    record = dict(config=config, variant=variant, seed=seed, train_cfg_options=train_items,
                  test_cfg_options=list(test_extra), deterministic=deterministic, checkpoint=ckpt,
                  wall_s=round(time.time() - start, 1), machine=machine_fingerprint())
    if run_config != config:
        record['run_config'] = run_config
    _write_json(osp.join(run_dir, 'run.json'), record)
    os.replace(metrics_tmp, osp.join(run_dir, metrics_file(None)))  # written last: marks the run finished
    return record


def _test_checkpoint(run_dir: str, eval_set: Optional[str], config: str, ckpt: str, seed: int, exp: str,
                     test_items: Sequence[str], deterministic: bool, in_process: bool) -> str:
    """``tools/test.py`` on ``ckpt`` into ``run_dir`` (work dir ``test[_<eval_set>]``, its log
    beside); returns the temporary metrics file, which the caller renames to
    :func:`metrics_file` last."""
    tag = '' if eval_set is None else f'_{eval_set}'
    tmp = osp.join(run_dir, f'metrics{tag}.tmp.json')
    argv = [config, ckpt, '--work-dir', osp.join(run_dir, f'test{tag}'), '--out', tmp,
            *(['--deterministic'] if deterministic else []),
            '--cfg-options', f'randomness.seed={seed}', f'experiment_name={exp}', *test_items]
    _tool_call('test', argv, in_process, osp.join(run_dir, f'test{tag}.log'))
    return tmp


def eval_one(run_dir: str, eval_set: str, test_extra: Sequence[str], in_process: bool) -> None:
    """Test a finished run's checkpoint again with its test options + ``test_extra``; writes
    ``metrics_<eval_set>.json`` (last, so an interrupted evaluation is redone)."""
    run = _load(osp.join(run_dir, 'run.json'))
    if run is None:
        raise RuntimeError(f'{run_dir} has no run.json (made by an older version?): cannot re-test it')
    exp = f"study_{config_name(run['config'])}_{run['variant']}_s{run['seed']}_{eval_set}"
    tmp = _test_checkpoint(run_dir, eval_set, run.get('run_config', run['config']), run['checkpoint'], run['seed'], exp,
                           [*run.get('test_cfg_options', []), *test_extra], bool(run.get('deterministic')),
                           in_process)
    _write_json(osp.join(run_dir, eval_file('run', eval_set)), dict(eval_set=eval_set, machine=machine_fingerprint()))
    os.replace(tmp, osp.join(run_dir, metrics_file(eval_set)))


# --------------------------------------------------------------------------- results
def _write_json(path: str, obj: Any) -> None:
    """Write ``obj`` to ``path`` atomically (a temporary file renamed over it), so that studies run
    side by side into one ``--out`` (other seeds or variants) never read each other's half-written
    ``study.json`` or ``results.json``."""
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _load(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def pick_metric(metrics: Dict[str, Any], name: str) -> float:
    keys = [k for k in metrics if k == name or k.endswith('/' + name)]
    if len(keys) != 1:
        raise KeyError(f'metric {name!r} matches {keys or "nothing"} in {sorted(metrics)}')
    return float(metrics[keys[0]])


def eval_file(stem: str, eval_set: Optional[str]) -> str:
    """``<stem>.json`` for the study's own test split, ``<stem>_<eval_set>.json`` for an
    evaluation set (a run's ``metrics``, the study's ``results``)."""
    return f'{stem}.json' if eval_set is None else f'{stem}_{eval_set}.json'


def metrics_file(eval_set: Optional[str]) -> str:
    """The file of a run's test metrics: ``metrics.json``, or ``metrics_<eval_set>.json``."""
    return eval_file('metrics', eval_set)


def collect_run(run_dir: str, metric: str, eval_set: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The finished run's metric and trainable parameters (None while unfinished)."""
    metrics = _load(osp.join(run_dir, metrics_file(eval_set)))
    if metrics is None:
        return None
    res = _load(osp.join(run_dir, 'resources.json')) or {}
    dis = _load(osp.join(run_dir, 'discrepancy.json')) or {}
    summary = dis.get('summary', {})
    run = _load(osp.join(run_dir, 'run.json')) or {}
    params = res.get('params_trainable')
    if params is None:  # PTQ stops before the first iteration: nothing trains
        params = 0 if summary.get('num_selected') == 0 else summary.get('params_selected')
    nds_metrics = None
    if metric == COMMON_NDS:
        value = _nds_breakdown(metrics, osp.join(run_dir, metrics_file(eval_set)))
    else:
        value = pick_metric(metrics, metric)
        if metric == 'NDS':  # kept in the runs CSV, so its runs can be tabulated as NDS-common later
            nds_metrics = _optional_breakdown_metrics(metrics)
    machine = run.get('machine')
    if eval_set is not None:  # tested again, maybe elsewhere
        tested = (_load(osp.join(run_dir, eval_file('run', eval_set))) or {}).get('machine')
        if tested != machine:
            machine = f'trained on {machine or "?"}; tested on {tested or "?"}'
    return dict(value=value, params_trainable=params, params_total=res.get('params_total'),
                layers_selected=summary.get('num_selected'), layers_quantized=summary.get('num_layers'),
                theta=summary.get('effective_threshold'), wall_s=run.get('wall_s'), machine=machine,
                nds_metrics=nds_metrics)


def _optional_breakdown_metrics(metrics: Dict[str, Any]) -> Optional[Dict[str, float]]:
    """The flat NDS breakdown of a run's metrics (``breakdown_metrics``), None when they are not
    nuScenes' ten-class detection metrics."""
    _projects_on_path()
    from ptqat.evaluation.nds_breakdown import parse_metrics
    try:
        return breakdown_metrics(parse_metrics(metrics))
    except ValueError:
        return None


def _projects_on_path() -> None:
    if osp.join(ROOT, 'projects') not in sys.path:
        sys.path.insert(0, osp.join(ROOT, 'projects'))


def _nds_breakdown(metrics: Dict[str, Any], path: str):
    _projects_on_path()
    from ptqat.evaluation.nds_breakdown import parse_metrics
    try:
        return parse_metrics(metrics)
    except ValueError as e:
        raise SystemExit(f'ptqat_study: --metric {COMMON_NDS}: {path}: {e}') from e


def apply_common_nds(results: Dict[str, Dict[str, Dict[int, dict]]]) -> Dict[str, List[str]]:
    """Replace each run's NDS breakdown (``value``) by its common-class NDS, computed over all
    the collected runs of its config, keeping the breakdown as flat metrics in
    ``nds_metrics`` (written to the runs CSV, so the set can be imported and grown); returns
    config -> the common classes."""
    _projects_on_path()
    from ptqat.evaluation.nds_breakdown import common_class_nds
    classes = {}
    for cfg, per_variant in results.items():
        runs = [r for per_seed in per_variant.values() for r in per_seed.values()]
        try:
            common, scores = common_class_nds([r['value'] for r in runs])
        except ValueError as e:
            raise SystemExit(f'ptqat_study: --metric {COMMON_NDS} for {cfg}: {e}') from e
        for r, score in zip(runs, scores):
            r['nds_metrics'] = breakdown_metrics(r['value'])
            r['value'] = score
        classes[cfg] = list(common)
    return classes


def breakdown_metrics(b) -> Dict[str, float]:
    """An ``NDSBreakdown`` as the flat, prefix-less metrics ``parse_metrics`` reads back: NDS,
    mAP, the mean and the per-class (``<class>_<error>``) TP errors (NaN where undefined)."""
    flat = dict(NDS=b.nds, mAP=b.mean_ap, **b.mean_tp)
    flat.update({f'{cls}_{err}': value for cls, errors in b.class_tp.items() for err, value in errors.items()})
    return flat


def _comparable(value) -> float:
    """A run's value as a number (an NDS breakdown by its reported NDS)."""
    return getattr(value, 'nds', value)


def _mean_std(values: List[float]):
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


# the selection questions of the paper, as (a, b) pairs compared seed by seed
PAIRS = (('ptqat', 'ptqat-large'), ('ptqat', 'random'), ('qat', 'ptq'), ('ptqat-p50', 'large-p50'),
         ('ptqat-p50', 'random-p50'))


def _paired(a: Dict[int, dict], b: Dict[int, dict], higher_is_better: bool) -> Optional[Dict[str, Any]]:
    """a − b over the seeds both have: n, mean, sample std, the seeds where a is at least as
    good as b, and how many pairs compare runs of two machines (None when no seed is shared)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [a[s]['value'] - b[s]['value'] for s in seeds]
    mean, std = _mean_std(diffs)
    return dict(n=len(seeds), mean=mean, std=std, seeds=seeds,
                a_at_least_b=sum((d >= 0) if higher_is_better else (d <= 0) for d in diffs),
                across_machines=sum(_machine(a[s]) != _machine(b[s]) for s in seeds))


def _machine(run: dict) -> str:
    """The machine a run ran on, as the tables name it."""
    return run.get('machine') or 'not recorded'


def _across(r: Optional[Dict[str, Any]]) -> str:
    """' (k across machines)' when k of the pairs compare runs of two machines (whose rounding
    differs, so the pair carries that difference too), else ''."""
    k = (r or {}).get('across_machines', 0)
    return f' ({k} across machines)' if k else ''


def summarize(results: Dict[str, Dict[str, Dict[int, dict]]], higher_is_better: bool = True
              ) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Per config and variant: n, mean, std, min, max of the metric, mean trainable
    parameters, the seeds where the variant is at least as good as QAT (same seed) and the
    paired difference to QAT (``minus_qat``: mean ± std of variant − QAT over the shared seeds)."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for cfg, per_variant in results.items():
        qat = per_variant.get('qat', {})
        out[cfg] = {}
        for variant, per_seed in per_variant.items():
            vals = [r['value'] for r in per_seed.values()]
            if not vals:
                continue
            mean, std = _mean_std(vals)
            params = [r['params_trainable'] for r in per_seed.values() if r['params_trainable'] is not None]
            vs_qat = _paired(per_seed, qat, higher_is_better)
            out[cfg][variant] = dict(n=len(vals), mean=mean, std=std, min=min(vals), max=max(vals),
                                     params_trainable=statistics.fmean(params) if params else None,
                                     ge_qat=vs_qat['a_at_least_b'] if vs_qat else 0,
                                     paired_with_qat=vs_qat['n'] if vs_qat else 0,
                                     minus_qat=vs_qat if variant != 'qat' else None, seeds=sorted(per_seed))
    return out


def paired_differences(results: Dict[str, Dict[str, Dict[int, dict]]], higher_is_better: bool = True,
                       pairs=PAIRS) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Per config, for each (a, b) in ``pairs`` that both ran: a − b seed by seed (same
    calibration batches and data order), mean ± std and the seeds where a is at least as good."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for cfg, per_variant in results.items():
        rows = {f'{a} - {b}': _paired(per_variant[a], per_variant[b], higher_is_better)
                for a, b in pairs if a in per_variant and b in per_variant}
        out[cfg] = {k: v for k, v in rows.items() if v is not None}
    return out


def _pm(r: Optional[Dict[str, Any]], digits: int = 4) -> str:
    if r is None:
        return '–'
    std = '–' if r['std'] is None else f"{r['std']:.{digits}f}"
    mean = r['mean'] if round(r['mean'], digits) != 0 else 0.0  # no '-0.0000'
    return f"{mean:+.{digits}f} ± {std}"


def markdown(summary, metric: str, higher_is_better: bool, header: str = '', paired=None) -> str:
    """The per-variant table of each config and, with ``paired`` (from ``paired_differences``),
    the table of the selection pairs."""
    better = '>=' if higher_is_better else '<='
    lines = [header] if header else []
    for cfg, rows in summary.items():
        lines += ['', f'### {cfg}', '',
                  f'| variant | {metric} mean ± std | min – max | seeds | trainable params '
                  f'| − QAT (paired) | {better} QAT (same seed) |',
                  '|---|---|---|---|---|---|---|']
        for variant in VARIANTS:
            if variant not in rows:
                continue
            r = rows[variant]
            std = '–' if r['std'] is None else f"{r['std']:.4f}"
            params = '–' if r['params_trainable'] is None else f"{r['params_trainable'] / 1e6:.3f}M"
            ge = '–' if variant == 'qat' or not r['paired_with_qat'] else \
                f"{r['ge_qat']} / {r['paired_with_qat']}{_across(r.get('minus_qat'))}"
            lines.append(f"| {VARIANTS[variant]['label']} | {r['mean']:.4f} ± {std} | {r['min']:.4f} – {r['max']:.4f}"
                         f" | {r['n']} | {params} | {_pm(r.get('minus_qat'))} | {ge} |")
        pairs = (paired or {}).get(cfg)
        if pairs:
            lines += ['', f'Paired by seed, {metric} of a − b:', '',
                      f'| a − b | mean ± std | seeds where a {better} b |', '|---|---|---|']
            lines += [f"| {k} | {_pm(p)} | {p['a_at_least_b']} / {p['n']}{_across(p)} |" for k, p in pairs.items()]
    return '\n'.join(lines) + '\n'


_GROUP_STYLE = {
    'ptq': ('PTQ', 'tab:gray', 'v'), 'qat': ('QAT', 'tab:red', 's'),
    'small-layers': ('PTQAT (smallest Dis), ratio of layers', 'tab:blue', 'o'),
    'small-params': ('PTQAT (smallest Dis), ratio of params', 'tab:cyan', 'D'),
    'large-layers': ('largest Dis, ratio of layers', 'tab:orange', '^'),
    'large-params': ('largest Dis, ratio of params', 'gold', '^'),
    'random-layers': ('random, ratio of layers', 'tab:green', 'x'),
    'random-params': ('random, ratio of params', 'olive', 'x'),
    'metric': ('PTQAT, other Dis metric / mode', 'tab:purple', 'P'),
    'auto': ("PTQAT, threshold='auto'", 'black', '*'),
    'fp': ('FP fine-tuned (control)', 'tab:brown', 'h'),
}


def plot(summary, metric: str, params_png: str, ratio_png: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cfgs = list(summary)
    for kind, path in (('params', params_png), ('ratio', ratio_png)):
        fig, axes = plt.subplots(1, len(cfgs), figsize=(6.4 * len(cfgs), 4.8), squeeze=False)
        for ax, cfg in zip(axes[0], cfgs):
            rows = summary[cfg]
            seen = set()
            for variant, spec in VARIANTS.items():
                r = rows.get(variant)
                if r is None:
                    continue
                label, color, marker = _GROUP_STYLE[spec['group']]
                x = (r['params_trainable'] / 1e6 if r['params_trainable'] is not None else None) \
                    if kind == 'params' else spec['x']
                if x is None:
                    continue
                ax.errorbar([x], [r['mean']], yerr=[[r['std'] or 0.0], [r['std'] or 0.0]], fmt=marker, color=color,
                            capsize=3, label=None if spec['group'] in seen else label)
                seen.add(spec['group'])
                ax.annotate(variant, (x, r['mean']), fontsize=6, xytext=(3, 3), textcoords='offset points')
            if kind == 'ratio':  # the two PTQAT curves, PTQ at 0 and QAT at 1 as their ends
                for group, style in (('small-layers', '-'), ('small-params', '--')):
                    pts = sorted((VARIANTS[v]['x'], rows[v]['mean']) for v in rows
                                 if VARIANTS[v]['group'] in (group, 'ptq', 'qat'))
                    if len(pts) > 1:
                        ax.plot(*zip(*pts), style, color=_GROUP_STYLE[group][1], linewidth=1)
                ax.set_xlabel('ratio fine-tuned (0 = PTQ, 1 = QAT)')
            else:
                ax.set_xlabel('trainable parameters (M)')
            ax.set_ylabel(f'{metric} (mean ± std over seeds)')
            n = max((r['n'] for r in rows.values()), default=0)
            ax.set_title(f'{cfg} ({n} seeds)', fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('configs', nargs='*', help='quantized configs with a PTQATHook (e.g. the ptqat ones)')
    p.add_argument('--variants', nargs='+', default=list(DEFAULT_VARIANTS),
                   help='variants to run (default: every selection variant; the control fp-ft only when named)')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2, 3, 4], help='seeds (default 0..4)')
    p.add_argument('--out', default='work_dirs/ptqat_study', help='run directories and results.json')
    p.add_argument('--docs', help='write <name>.md and the two PNG plots into this folder')
    p.add_argument('--name', default='ptqat_study', help='file name stem of the docs outputs')
    p.add_argument('--metric', default='NDS',
                   help=f'metric name (suffix match), default NDS; {COMMON_NDS}: NDS with the TP errors '
                        'over the classes above 10 %% recall in every run of the config')
    p.add_argument('--lower-is-better', action='store_true', help='the metric is better when lower')
    p.add_argument('--train-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='extra --cfg-options of every training run')
    p.add_argument('--test-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='extra --cfg-options of every test run')
    p.add_argument('--deterministic', action='store_true',
                   help='train and test with --deterministic (bit-identical reruns on this machine, 1 thread)')
    p.add_argument('--rerun', action='store_true', help='run finished runs again')
    p.add_argument('--summarize-only', action='store_true', help='run nothing; tabulate what is finished')
    p.add_argument('--eval-set', metavar='NAME',
                   help='train nothing: test the finished runs again with --test-options (e.g. another val '
                        'set) into metrics_NAME.json, and tabulate those')
    p.add_argument('--import-runs', nargs='+', default=[], metavar='CSV',
                   help='also tabulate the runs of these <name>_runs.csv files (written by --docs) where '
                        'OUT has no finished run; those runs are not run again')
    p.add_argument('--in-process', action='store_true', help='call the tools in this process (tests)')
    p.add_argument('--pairs', nargs='+', default=[], metavar='A:B',
                   help='more variant pairs to compare seed by seed (A − B), after the default ones '
                        '(' + ', '.join(f'{a}:{b}' for a, b in PAIRS) + '), e.g. ptqat-auto:ptqat-r25')
    p.add_argument('--keep-going', action='store_true', help='after a failed run, go on with the next one')
    p.add_argument('--list-variants', action='store_true', help='print the variants and exit')
    return p.parse_args(argv)


def parse_pairs(items: List[str], variants: Sequence[str]) -> List[Tuple[str, str]]:
    """``['a:b', ...]`` (``--pairs``) as (a, b) variant pairs; an item that is not two distinct
    known variants joined by ':', repeats a pair, or names a variant outside ``variants`` (the
    study's ``--variants``) is refused, naming it and what is allowed."""
    pairs = []
    for item in items:
        parts = item.split(':')
        if len(parts) != 2 or not all(parts):
            raise SystemExit(f'ptqat_study: --pairs {item!r} is not A:B (two variants joined by one colon, '
                             'e.g. ptqat-auto:ptqat-r25)')
        unknown = [v for v in parts if v not in VARIANTS]
        if unknown:
            raise SystemExit(f'ptqat_study: --pairs {item!r}: unknown variant(s) {unknown}; '
                             f'allowed: {", ".join(VARIANTS)}')
        if parts[0] == parts[1]:
            raise SystemExit(f'ptqat_study: --pairs {item!r} compares a variant with itself')
        pair = (parts[0], parts[1])
        if pair in PAIRS or pair in pairs:
            raise SystemExit(f'ptqat_study: --pairs {item!r} is listed twice or is a default pair '
                             f'({", ".join(f"{x}:{y}" for x, y in PAIRS)})')
        pairs.append(pair)
    outside = sorted({v for pair in pairs for v in pair} - set(variants))
    if outside:
        raise SystemExit(f'ptqat_study: --pairs name(s) {outside} not in --variants {list(variants)}; '
                         'add them to --variants')
    return pairs


def _check_args(a) -> None:
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f'ptqat_study: unknown variant(s) {unknown}; allowed: {", ".join(VARIANTS)}')
    if not a.configs:
        raise SystemExit('ptqat_study: give at least one config')
    missing = [c for c in a.configs if not osp.isfile(c)]
    if missing:
        raise SystemExit(f'ptqat_study: config file(s) not found: {missing}')
    if len({config_name(c) for c in a.configs}) != len(a.configs):
        raise SystemExit(f'ptqat_study: two configs share a file name: {a.configs}')
    if len(set(a.seeds)) != len(a.seeds) or any(s < 0 for s in a.seeds):
        raise SystemExit(f'ptqat_study: seeds must be distinct non-negative integers, got {a.seeds}')
    if a.metric == COMMON_NDS and a.lower_is_better:
        raise SystemExit(f'ptqat_study: --metric {COMMON_NDS} is higher-is-better; drop --lower-is-better')
    if a.eval_set is not None:
        if not re.fullmatch(r'[A-Za-z0-9_-]+', a.eval_set):
            raise SystemExit(f'ptqat_study: --eval-set {a.eval_set!r}: use letters, digits, _ or - (a file name part)')
        if not a.test_options:
            raise SystemExit('ptqat_study: --eval-set needs --test-options (what differs from the runs\' own test, '
                             'e.g. the data root of another val set)')
    for item in a.train_options + a.test_options:
        if '=' not in item:
            raise SystemExit(f'ptqat_study: option {item!r} is not KEY=VALUE')
        if item.split('=', 1)[0] in ('randomness.seed', 'work_dir') or item.startswith('custom_hooks'):
            raise SystemExit(f'ptqat_study: option {item!r} is set by the study itself (seeds, variants, '
                             'run directories)')


def _check_identity(out: str, a) -> None:
    """``OUT/study.json`` holds the options that change results; another set is refused. With
    ``--eval-set`` the study's training options must match and ``OUT/eval_<NAME>.json`` holds
    the evaluation's test options."""
    if a.eval_set is not None:
        study = _load(osp.join(out, 'study.json'))
        if study is None:
            raise SystemExit(f'ptqat_study: --eval-set: {out} holds no study (no study.json)')
        if study.get('train_options') != a.train_options or study.get('deterministic') != a.deterministic:
            raise SystemExit(f'ptqat_study: --eval-set: {out} holds a study made with {study}; give its '
                             '--train-options and --deterministic')
        ident = dict(test_options=a.test_options)
        path = osp.join(out, f'eval_{a.eval_set}.json')
    else:
        ident = dict(train_options=a.train_options, test_options=a.test_options, deterministic=a.deterministic)
        path = osp.join(out, 'study.json')
    old = _load(path)  # the metric is not part of it: any metric of the same runs can be tabulated
    if old is not None and any(old.get(k) != v for k, v in ident.items()):
        if a.eval_set is not None:
            raise SystemExit(f'ptqat_study: {path} holds the evaluation {a.eval_set!r} made with {old}, not '
                             f'{ident}; use another --eval-set NAME')
        raise SystemExit(f'ptqat_study: {out} holds a study made with {old}, not {ident}; use another --out '
                         '(finished runs would be mixed with different settings)')
    os.makedirs(out, exist_ok=True)
    _write_json(path, ident)


RUN_COLUMNS = ('config', 'variant', 'seed', 'metric', 'value', 'params_trainable', 'params_total',
               'layers_selected', 'layers_quantized', 'theta', 'wall_s')
# the options a run was made with (JSON), written since the runs CSV can be imported again, and
# the machine it ran on (machine_fingerprint; empty: not recorded); CSVs written before them have
# only RUN_COLUMNS
OPTION_COLUMNS = ('train_options', 'test_options', 'deterministic', 'eval_set')
MACHINE_COLUMN = 'machine'
# NDS and NDS-common only: each run's NDS breakdown (flat metrics, JSON), since NDS-common's
# common classes, and so every value, are recomputed over whatever set of runs is tabulated (an
# NDS runs CSV can be imported as NDS-common)
NDS_METRICS_COLUMN = 'nds_metrics'
_RUN_TYPES = dict(value=float, params_trainable=int, params_total=int, layers_selected=int,
                  layers_quantized=int, theta=float, wall_s=float)


def study_options(a) -> Dict[str, Any]:
    """What a run of this call is made with (``OPTION_COLUMNS``): ``test_options`` are the
    evaluation set's with ``--eval-set``."""
    return dict(train_options=a.train_options, test_options=a.test_options, deterministic=a.deterministic,
                eval_set=a.eval_set)


def write_runs_csv(results: Dict[str, Dict[str, Dict[int, dict]]], metric: str, path: str,
                   options: Optional[Dict[str, Any]] = None) -> None:
    """Every finished run, one row (``RUN_COLUMNS`` + ``OPTION_COLUMNS``): the per-seed values
    behind the tables, kept beside them in ``--docs`` so they outlive the run directories
    (``--import-runs`` reads them back)."""
    opts = [json.dumps((options or {}).get(k)) for k in OPTION_COLUMNS]
    extra = (NDS_METRICS_COLUMN,) if metric in (COMMON_NDS, 'NDS') else ()
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(RUN_COLUMNS + OPTION_COLUMNS + (MACHINE_COLUMN,) + extra)
        for cfg, per_variant in results.items():
            for variant, per_seed in per_variant.items():
                for seed in sorted(per_seed):
                    r = per_seed[seed]
                    w.writerow([cfg, variant, seed, metric] + ['' if r.get(k) is None else r[k]
                                                               for k in RUN_COLUMNS[4:]] + opts
                               + [r.get('machine') or '']
                               + ['' if r.get(k) is None else json.dumps(r[k]) for k in extra])


def _parse_run_row(row: Dict[str, str], where: str) -> Dict[str, Any]:
    run: Dict[str, Any] = {}
    for key, typ in _RUN_TYPES.items():
        text = row[key].strip()
        try:
            run[key] = None if text == '' else (int(float(text)) if typ is int else typ(text))
        except ValueError:
            raise SystemExit(f'ptqat_study: {where}: {key}={text!r} is not a number') from None
    if run['value'] is None:
        raise SystemExit(f'ptqat_study: {where}: the row has no value')
    return run


def read_runs_csv(path: str, metric: str, options: Dict[str, Any]) -> Dict[tuple, Dict[str, Any]]:
    """The runs of a ``<name>_runs.csv`` as ``{(config, variant, seed): run}``. Every row must
    be of ``metric`` and, where the CSV has ``OPTION_COLUMNS``, made with ``options`` (else
    SystemExit naming the row); a CSV without them is taken on trust (printed)."""
    if not osp.isfile(path):
        raise SystemExit(f'ptqat_study: --import-runs {path}: no such file')
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        missing = [c for c in RUN_COLUMNS if c not in header]
        if missing:
            raise SystemExit(f'ptqat_study: --import-runs {path}: not a runs CSV of this tool (no column(s) '
                             f'{missing}; expected {", ".join(RUN_COLUMNS)})')
        checked = [c for c in OPTION_COLUMNS if c in header]
        if not checked:
            print(f'[study] {path} predates the option columns: its runs are taken to be made with this '
                  f'call\'s options {options}', flush=True)
        runs: Dict[tuple, Dict[str, Any]] = {}
        for line, row in enumerate(reader, start=2):
            where = f'--import-runs {path} line {line}'
            if row['metric'] != metric and not (metric == COMMON_NDS and row['metric'] == 'NDS'):
                raise SystemExit(f'ptqat_study: {where}: metric {row["metric"]!r}, but this call tabulates '
                                 f'{metric!r} (import the runs CSV of that metric)')
            for col in checked:
                value = _json_cell(row, col, where)
                if value != options[col]:
                    raise SystemExit(f'ptqat_study: {where}: made with {col}={value!r}, this call has '
                                     f'{options[col]!r}; import only runs made with the same options')
            try:
                key = (row['config'], row['variant'], int(row['seed']))
            except ValueError:
                raise SystemExit(f'ptqat_study: {where}: seed={row["seed"]!r} is not an integer') from None
            if key in runs:
                raise SystemExit(f'ptqat_study: {where}: {key} appears twice')
            run = dict(_parse_run_row(row, where), imported=path, machine=row.get(MACHINE_COLUMN) or None)
            nds_metrics = _row_nds_metrics(row, where)
            if metric == COMMON_NDS:  # its common-class NDS is recomputed over the new set of runs
                if nds_metrics is None:
                    raise SystemExit(f'ptqat_study: {where}: no {NDS_METRICS_COLUMN!r} column; {COMMON_NDS} rows '
                                     'can be imported only from runs CSVs that hold each run\'s per-class metrics '
                                     '(written since 2026-12-06 20:30)')
                run['value'] = _nds_breakdown(nds_metrics, where)
            elif nds_metrics is not None:  # carried into the grown study's runs CSV
                run['nds_metrics'] = nds_metrics
            runs[key] = run
    return runs


def _row_nds_metrics(row: Dict[str, str], where: str) -> Optional[Dict[str, float]]:
    """A row's per-class metrics (``NDS_METRICS_COLUMN``), None where it has none."""
    return _json_cell(row, NDS_METRICS_COLUMN, where) if row.get(NDS_METRICS_COLUMN) else None


def _json_cell(row: Dict[str, str], column: str, where: str) -> Any:
    """A runs-CSV cell written as JSON (the option columns, the per-class metrics), parsed; a
    cell that is not JSON stops the import naming its line and column."""
    try:
        return json.loads(row[column])
    except json.JSONDecodeError as e:
        raise SystemExit(f'ptqat_study: {where}: {column} is not JSON ({e})') from None


def import_runs(paths: Sequence[str], metric: str, options: Dict[str, Any]) -> Dict[tuple, Dict[str, Any]]:
    """The runs of several runs CSVs; a (config, variant, seed) in two of them is refused."""
    runs: Dict[tuple, Dict[str, Any]] = {}
    for path in paths:
        for key, run in read_runs_csv(path, metric, options).items():
            if key in runs:
                raise SystemExit(f'ptqat_study: --import-runs: {key} is in both {runs[key]["imported"]} '
                                 f'and {path}')
            runs[key] = run
    return runs


def merge_imported(results: Dict[str, Dict[str, Dict[int, dict]]], imported: Dict[tuple, Dict[str, Any]],
                   plan: Sequence[tuple]) -> List[str]:
    """Add the imported runs of the plan that have no finished run directory to ``results``
    (in place); returns what to report: runs found both ways with other values (the run
    directory's is kept) and the imported runs outside the plan."""
    notes = []
    in_plan = {(config_name(c), v, s) for c, v, s in plan}
    for key in sorted(imported):
        cfg, variant, seed = key
        if key not in in_plan:
            continue
        local = results.get(cfg, {}).get(variant, {}).get(seed)
        if local is None:
            results.setdefault(cfg, {}).setdefault(variant, {})[seed] = imported[key]
        elif not math.isclose(_comparable(local['value']), _comparable(imported[key]['value']), rel_tol=0,
                              abs_tol=1e-9):
            notes.append(f'{cfg} {variant} seed {seed}: the run directory has {_comparable(local["value"]):.6g} '
                         f'(machine: {_machine(local)}), {imported[key]["imported"]} '
                         f'{_comparable(imported[key]["value"]):.6g} (machine: {_machine(imported[key])}); '
                         'the run directory\'s is used')
    outside = sorted(set(imported) - in_plan)
    if outside:
        notes.append(f'{len(outside)} imported run(s) outside this call\'s configs, variants and seeds are not '
                     f'tabulated (first: {outside[0]})')
    return notes


def in_plan_order(results: Dict[str, Dict[str, Dict[int, dict]]], plan: Sequence[tuple]
                  ) -> Dict[str, Dict[str, Dict[int, dict]]]:
    """``results`` ordered as ``plan`` (configs, then variants, then seeds), so that a runs CSV
    grown with imported runs lists its rows in the order of one that ran them all locally."""
    ordered: Dict[str, Dict[str, Dict[int, dict]]] = {}
    for cfg, variant, seed in plan:
        run = results.get(config_name(cfg), {}).get(variant, {}).get(seed)
        if run is not None:
            ordered.setdefault(config_name(cfg), {}).setdefault(variant, {})[seed] = run
    return ordered


def machines_note(results: Dict[str, Dict[str, Dict[int, dict]]]) -> str:
    """One sentence naming the machines the tabulated runs ran on, with their run counts (a
    deterministic rerun is bit-identical only on the same kind of machine)."""
    counts: Dict[str, int] = {}
    for per_variant in results.values():
        for per_seed in per_variant.values():
            for r in per_seed.values():
                name = _machine(r)
                counts[name] = counts.get(name, 0) + 1
    if not counts:
        return ''
    if len(counts) == 1:
        return f' Machine: {next(iter(counts))}.'
    return ' Machines: ' + '; '.join(f'{m} ({n} runs)' for m, n in sorted(counts.items())) + \
        ' (a run is bit-identical only on its kind of machine; see `_runs.csv`).'


def _fmt_s(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
    return f'{seconds // 60}m{seconds % 60:02d}s'


def main(argv=None) -> Dict[str, Any]:
    a = parse_args(argv)
    if a.list_variants:
        for name, spec in VARIANTS.items():
            print(f"{name:18s} {spec['label']}{'  (only when named)' if spec.get('control') else ''}")
        return {}
    _check_args(a)
    extra_pairs = parse_pairs(a.pairs, a.variants)
    _check_identity(a.out, a)
    plan = [(c, v, s) for c in a.configs for v in a.variants for s in a.seeds]
    hook_idx = {c: ptqat_hook_index(c) for c in a.configs}
    ran = skipped = failed = 0
    start = time.time()

    def finished(c: str, v: str, s: int, name: str = metrics_file(None)) -> bool:
        return osp.isfile(osp.join(a.out, config_name(c), v, f'seed{s}', name))

    imported = import_runs(a.import_runs, a.metric, study_options(a))
    out_name = metrics_file(a.eval_set)

    def done(c: str, v: str, s: int) -> bool:
        return finished(c, v, s, out_name) or (config_name(c), v, s) in imported

    trained = [p for p in plan if a.eval_set is None or finished(*p)]
    todo = [p for p in trained if a.rerun or not done(*p)]
    skipped = len(trained) - len(todo)
    unfinished = [p for p in plan if p not in trained and (config_name(p[0]), p[1], p[2]) not in imported]
    what = 'runs' if a.eval_set is None else f'evaluations on {a.eval_set!r} ({len(unfinished)} runs unfinished)'
    print(f'[study] {len(plan)} {what} ({len(a.configs)} config(s) x {len(a.variants)} variant(s) x '
          f'{len(a.seeds)} seed(s)); {skipped} finished already, {len(todo)} to run', flush=True)
    for k, (cfg, variant, seed) in enumerate(todo, start=1):
        run_dir = osp.join(a.out, config_name(cfg), variant, f'seed{seed}')
        if not a.summarize_only:
            elapsed = time.time() - start
            eta = '' if ran == 0 else f', about {_fmt_s(elapsed / ran * (len(todo) - k + 1))} left'
            print(f'[study {_fmt_s(elapsed)}] run {k}/{len(todo)}: {config_name(cfg)} {variant} seed {seed}{eta}',
                  flush=True)
            if a.rerun and osp.isfile(osp.join(run_dir, out_name)):
                os.remove(osp.join(run_dir, out_name))
            try:
                if a.eval_set is None:
                    run_one(cfg, hook_idx[cfg], variant, seed, run_dir, a.train_options, a.test_options,
                            a.in_process, a.deterministic)
                else:
                    eval_one(run_dir, a.eval_set, a.test_options, a.in_process)
                ran += 1
            except Exception as e:  # noqa: BLE001  (reported, then stop or go on)
                failed += 1
                print(f'[study] FAILED {config_name(cfg)} {variant} seed {seed}: {e}', flush=True)
                if not a.keep_going:
                    raise
    results: Dict[str, Dict[str, Dict[int, dict]]] = {}
    for cfg, variant, seed in plan:
        r = collect_run(osp.join(a.out, config_name(cfg), variant, f'seed{seed}'), a.metric, a.eval_set)
        if r is not None:
            results.setdefault(config_name(cfg), {}).setdefault(variant, {})[seed] = r
    if a.import_runs:
        n_local = sum(len(per) for pv in results.values() for per in pv.values())
        for note in merge_imported(results, imported, plan):
            print(f'[study] --import-runs: {note}', flush=True)
        results = in_plan_order(results, plan)
        n_all = sum(len(per) for pv in results.values() for per in pv.values())
        print(f'[study] tabulating {n_all} runs: {n_local} from {a.out}, {n_all - n_local} imported', flush=True)
    common = apply_common_nds(results) if a.metric == COMMON_NDS else None
    summary = summarize(results, not a.lower_is_better)
    paired = paired_differences(results, not a.lower_is_better, PAIRS + tuple(extra_pairs))
    for cfg in results:
        for x, y in extra_pairs:
            if f'{x} - {y}' not in paired.get(cfg, {}):
                print(f'[study] --pairs {x}:{y}: no seed where both finished in {cfg}; no row', flush=True)
    doc = dict(metric=a.metric, common_classes=common, higher_is_better=not a.lower_is_better, seeds=a.seeds,
               variants=a.variants, extra_pairs=[list(p) for p in extra_pairs],
               train_options=a.train_options, test_options=a.test_options, eval_set=a.eval_set,
               imported_from=a.import_runs,
               runs={c: {v: {str(s): r for s, r in per.items()} for v, per in pv.items()} for c, pv in results.items()},
               summary=summary, paired=paired)
    results_path = osp.join(a.out, eval_file('results', a.eval_set))
    _write_json(results_path, doc)
    if a.docs and summary:
        os.makedirs(a.docs, exist_ok=True)
        cmd = 'python tools/ptqat_study.py ' + ' '.join(shlex.quote(x) for x in (argv if argv is not None
                                                                                 else sys.argv[1:]))
        split = "each config's test split" if a.eval_set is None else f'the evaluation set {a.eval_set!r}'
        header = (f'PTQAT study: `{cmd}`\n\n{a.metric} on {split}; mean ± sample std over the '
                  f'finished runs of the seeds {a.seeds} (the seeds column counts them; seed = calibration '
                  f'batches, fine-tuning order and random selection). Run by run: `{a.name}_runs.csv`.')
        header += machines_note(results)
        if a.import_runs:
            header += (' Runs not in the run directories are taken from ' +
                       ', '.join(f'`{osp.basename(x)}`' for x in a.import_runs) + ' (`--import-runs`).')
        if common:
            header += ''.join(f'\n\n{COMMON_NDS} of {c}: NDS with the five TP errors averaged over the '
                              f'classes above 10 % recall in all its runs ({", ".join(cl)}); not the '
                              'nuScenes NDS (see tools/nds_breakdown.py).' for c, cl in common.items())
        with open(osp.join(a.docs, f'{a.name}.md'), 'w') as f:
            f.write(markdown(summary, a.metric, not a.lower_is_better, header, paired))
        plot(summary, a.metric, osp.join(a.docs, f'{a.name}_params.png'), osp.join(a.docs, f'{a.name}_ratio.png'))
        write_runs_csv(results, a.metric, osp.join(a.docs, f'{a.name}_runs.csv'), study_options(a))
    print(f'[study] done: {ran} run, {skipped} skipped (finished before), {failed} failed; '
          f'results in {results_path}', flush=True)
    return dict(ran=ran, skipped=skipped, failed=failed, summary=summary)


if __name__ == '__main__':
    main()
