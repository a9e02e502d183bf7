"""Training-memory and speed benchmark: FP / QAT / PTQAT / PTQAT-large (and ModelOpt INT8 QAT).

    python tools/benchmark_ptqat.py CONFIG CHECKPOINT [--steps 10] [--batch-size 1] [--out PREFIX]

CONFIG is a quantized (PTQATModel) config, e.g. ``configs/ptqat/bevdet/bevdet-tiny_ptqat-w4a8_synth.py``;
CHECKPOINT its float checkpoint, or ``random`` for random weights (the selection then comes
from that model's own calibration). Random weights are the model's own initialisation (seed 0)
with the BatchNorm running statistics estimated on the fixed batches (a train-mode forward
without gradients): left at their initial values (mean 0, variance 1), the eval-mode calibration
would see un-normalised activations that the train-mode steps never produce, and the step sizes
would be meaningless. The data: ``--data-root`` (a nuScenes-style root with info files), else a
small synthetic nuScenes set is generated in a temporary directory (2 train / 1 val scene with
enough samples for ``--batches`` x ``--batch-size``; the train pipeline still produces the
config's full-size inputs).

What it does: builds the quantized model, loads the float weights, calibrates on
``--calib-batches`` fixed batches, measures the per-layer discrepancy and selects the
smallest-Dis half (PTQAT) and the largest-Dis half (PTQAT-large). Then each variant runs in
its own process (``--in-process`` to skip that) on the same fixed batches:

* ``fp``: the float model, everything trainable;
* ``qat``: quantized, every parameter trainable (as ``configs/ptqat/_base_/qat.py``);
* ``ptqat`` / ``ptqat-large``: only the selected layers train, frozen norms in eval mode;
* ``qat-plain`` / ``ptqat-plain``: the same with the lean functions switched off (the
  plain implementation before issue 11), for comparison;
* ``modelopt``: ``nvidia-modelopt``'s ``mtq.quantize(model, mtq.INT8_DEFAULT_CFG)`` of the
  float model (calibrated on the same batches), everything trainable; skipped with a
  message when ``modelopt`` is not importable (``pip install -r requirements-bench.txt``).

Per variant: trainable parameters, optimizer (AdamW) state bytes, saved-for-backward bytes of
one training step (autograd saved-tensor hooks, unique storages; also without parameter
storages), peak memory (``torch.cuda.max_memory_allocated`` on a GPU; on CPU the peak RSS
of the worker process during the steps, after ``/proc/self/clear_refs``), median step time
over ``--steps`` steps (after one warm-up step). Plus the fake-quant cost per call
(forward + backward on one activation tensor) of the LSQ quantizer, lean and plain, vs
``torch.fake_quantize_per_tensor_affine``. Writes ``PREFIX.json``, ``PREFIX.md`` and
``PREFIX.png`` (default ``docs/benchmark_ptqat_<config name>``).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VARIANTS = ('fp', 'qat', 'ptqat', 'ptqat-large', 'qat-plain', 'ptqat-plain', 'modelopt')
LABELS = {'fp': 'FP', 'qat': 'QAT', 'ptqat': 'PTQAT', 'ptqat-large': 'PTQAT-large', 'qat-plain': 'QAT (plain)',
          'ptqat-plain': 'PTQAT (plain)', 'modelopt': 'ModelOpt INT8 QAT'}
MIB = 1024.0 ** 2


def log(msg: str) -> None:
    print(f'[benchmark_ptqat {time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- task
class Task(NamedTuple):
    """What the benchmark needs from a model family.

    ``build_fp()`` -> float model with its weights; ``build_quant()`` -> quantized model with
    the float weights and uninitialised quantizers; ``batches``: fixed training batches;
    ``loss(model, batch)`` -> scalar training loss; ``forward(model, batch)`` -> an
    inference forward (calibration/discrepancy).
    """

    name: str
    build_fp: Callable[[], nn.Module]
    build_quant: Callable[[], nn.Module]
    batches: List[Any]
    loss: Callable[[nn.Module, Any], torch.Tensor]
    forward: Callable[[nn.Module, Any], Any]
    device: torch.device


def prepare_quant_state(task: Task, calib_batches: int) -> Dict[str, Any]:
    """Calibrate a quantized model, rank the layers and return its state and both selections."""
    from ptqat.quant import calibrate, measure_discrepancy, select_layers
    model = task.build_quant().to(task.device)
    batches = task.batches[:calib_batches]
    log(f'calibrating on {len(batches)} batch(es)')
    calibrate(model, batches, task.forward, progress=False)
    log('measuring the per-layer discrepancy')
    dis = measure_discrepancy(model, batches, task.forward, progress=False)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return dict(state=state, small=select_layers(dis, 'small', 0.5), large=select_layers(dis, 'large', 0.5),
                num_layers=len(dis))


def _storage_key(t: torch.Tensor):
    s = t.untyped_storage()
    return (s.data_ptr(), t.device.type), s.nbytes()


def saved_bytes(task: Task, model: nn.Module, batch: Any) -> Dict[str, int]:
    """Unique storages autograd saves for one training step's backward (bytes), with and
    without the storages of the model's parameters."""
    seen: Dict[Any, int] = {}

    def pack(t):
        key, n = _storage_key(t)
        seen[key] = n
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = task.loss(model, batch)
    loss.backward()
    params = {_storage_key(p)[0] for p in model.parameters()}
    return dict(saved_bytes=sum(seen.values()),
                saved_bytes_no_params=sum(n for k, n in seen.items() if k not in params))


def _cpu_peak_reset() -> None:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def _cpu_peak_bytes() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def setup_variant(task: Task, variant: str, prep: Optional[Dict[str, Any]]) -> nn.Module:
    """The model of one variant, in training configuration."""
    from ptqat.quant import freeze_layers, quantized_layers
    if variant == 'fp':
        model = task.build_fp().to(task.device)
        model.train()
        return model
    if variant == 'modelopt':
        import modelopt.torch.quantization as mtq
        model = task.build_fp().to(task.device)
        model.eval()

        def loop(m):
            with torch.no_grad():
                for b in task.batches[:2]:
                    task.forward(m, b)
        model = mtq.quantize(model, mtq.INT8_DEFAULT_CFG, loop)
        model.train()
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    model = task.build_quant().to(task.device)
    model.load_state_dict(prep['state'])
    lean = not variant.endswith('-plain')
    base = variant[:-len('-plain')] if not lean else variant
    names = [n for n, _ in quantized_layers(model)]
    if base == 'qat':
        freeze_layers(model, names, train_unquantized=True, lean=lean)
        model.train()
    else:
        freeze_layers(model, prep['small'] if base == 'ptqat' else prep['large'], lean=lean)
        model.train()
        for m in model.modules():  # frozen norms keep their statistics (PTQATHook freeze_bn_stats)
            if isinstance(m, nn.modules.batchnorm._NormBase) and not any(
                    p.requires_grad for p in m.parameters(recurse=False)):
                m.eval()
    return model


def run_variant(task: Task, variant: str, prep: Optional[Dict[str, Any]], steps: int) -> Dict[str, Any]:
    """Measure one variant in this process."""
    from ptqat.quant.fused import lean_disabled
    if task.device.type == 'cuda':  # --in-process: the previous variant's memory is returned first
        import gc
        gc.collect()
        torch.cuda.empty_cache()
    torch.manual_seed(0)
    model = setup_variant(task, variant, prep)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    ctx = lean_disabled() if variant.endswith('-plain') else _null()
    with ctx:
        opt.zero_grad(set_to_none=True)
        res = saved_bytes(task, model, task.batches[0])  # also the warm-up step
        opt.step()
        res['optimizer_state_bytes'] = sum(t.numel() * t.element_size() for st in opt.state.values()
                                           for t in st.values() if torch.is_tensor(t))
        times = []
        _sync(task.device)
        if task.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(task.device)
            base = torch.cuda.memory_allocated(task.device)
        else:
            _cpu_peak_reset()
            base = _cpu_peak_bytes()
        for i in range(steps):
            batch = task.batches[i % len(task.batches)]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = task.loss(model, batch)
            loss.backward()
            opt.step()
            if not torch.isfinite(loss.detach()).all():
                raise FloatingPointError(f'{variant}: the loss of timed step {i + 1} is {loss.item()}')
            _sync(task.device)
            times.append(time.perf_counter() - t0)
        peak = (torch.cuda.max_memory_allocated(task.device) if task.device.type == 'cuda' else _cpu_peak_bytes())
    res.update(variant=variant, trainable_params=sum(p.numel() for p in params),
               total_params=sum(p.numel() for p in model.parameters()), peak_bytes=peak,
               peak_above_start_bytes=peak - base, step_time_s=statistics.median(times), steps=steps,
               peak_kind='cuda max_memory_allocated' if task.device.type == 'cuda' else 'peak RSS of the worker')
    return res


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def fake_quant_overhead(device: torch.device, shape: Sequence[int] = (1, 64, 32, 88), n: int = 50) -> Dict[str, float]:
    """Median seconds per forward+backward call on one activation tensor: the LSQ quantizer
    (lean and plain, trainable step) vs torch's fused per-tensor fake quant."""
    from ptqat.quant import LSQQuantizer
    from ptqat.quant.fused import lean_disabled
    x = torch.randn(*shape, device=device)
    q = LSQQuantizer(8).to(device)
    q.init_step_size(x, 'minmax')

    def timed(fn):
        out = []
        for i in range(n + 3):
            xx = x.detach().requires_grad_(True)
            _sync(device)
            t0 = time.perf_counter()
            fn(xx).sum().backward()
            _sync(device)
            if i >= 3:
                out.append(time.perf_counter() - t0)
        return statistics.median(out)

    scale, zp = q.effective_step_size().item(), 0
    torch_fn = timed(lambda xx: torch.fake_quantize_per_tensor_affine(xx, scale, zp, -128, 127))
    lean = timed(q)
    with lean_disabled():
        plain = timed(q)
    return dict(shape=list(shape), torch_fused_s=torch_fn, lsq_lean_s=lean, lsq_plain_s=plain,
                lean_over_torch=lean / torch_fn, plain_over_torch=plain / torch_fn)


# --------------------------------------------------------------------------- report
def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or not b else a / b


def targets(rows: Dict[str, Dict[str, Any]], overhead: Dict[str, float], large_model: bool) -> List[Dict[str, Any]]:
    """The issue-11 targets, each with the measured value and met/missed."""
    def get(v, k):
        return rows.get(v, {}).get(k)

    out = []

    def add(name, value, limit, ok=None):
        if value is None:
            return
        out.append(dict(target=name, value=round(value, 3), limit=limit,
                        met=bool(value <= limit) if ok is None else ok))

    add('saved bytes PTQAT / QAT', _ratio(get('ptqat', 'saved_bytes'), get('qat', 'saved_bytes')), 0.6)
    add('saved bytes QAT / FP', _ratio(get('qat', 'saved_bytes'), get('fp', 'saved_bytes')), 1.2)
    add('saved bytes QAT / ModelOpt', _ratio(get('qat', 'saved_bytes'), get('modelopt', 'saved_bytes')), 1.0)
    add('step time QAT / ModelOpt', _ratio(get('qat', 'step_time_s'), get('modelopt', 'step_time_s')), 1.0)
    if large_model:
        add('peak memory PTQAT / QAT', _ratio(get('ptqat', 'peak_above_start_bytes'),
                                              get('qat', 'peak_above_start_bytes')), 0.75)
    add('step time PTQAT / QAT', _ratio(get('ptqat', 'step_time_s'), get('qat', 'step_time_s')), 0.85)
    add('step time QAT / FP', _ratio(get('qat', 'step_time_s'), get('fp', 'step_time_s')), 1.25)
    add('fake-quant call / torch fused', overhead.get('lean_over_torch'), 2.0)
    return out


def to_markdown(result: Dict[str, Any]) -> str:
    rows = result['rows']
    fp = rows.get('fp', {})
    lines = [f"### {result['name']}", '',
             f"{result['setup']}", '',
             '| variant | trainable params | optimizer state MiB | saved for backward MiB (x FP) | '
             'saved w/o params MiB | peak MiB (above start) | step ms (x FP) |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for v in VARIANTS:
        r = rows.get(v)
        if r is None:
            continue
        if 'skipped' in r:
            lines.append(f"| {LABELS[v]} | skipped: {r['skipped']} | | | | | |")
            continue
        sx = _ratio(r['saved_bytes'], fp.get('saved_bytes'))
        tx = _ratio(r['step_time_s'], fp.get('step_time_s'))
        lines.append(
            f"| {LABELS[v]} | {r['trainable_params']:,} | {r['optimizer_state_bytes'] / MIB:.1f} | "
            f"{r['saved_bytes'] / MIB:.1f} ({sx:.2f}x) | {r['saved_bytes_no_params'] / MIB:.1f} | "
            f"{r['peak_bytes'] / MIB:.0f} ({r['peak_above_start_bytes'] / MIB:.0f}) | "
            f"{1e3 * r['step_time_s']:.0f} ({tx:.2f}x) |")
    o = result.get('fake_quant')
    if o:
        lines += ['', f"Fake quant, forward+backward of one {tuple(o['shape'])} tensor: torch fused "
                      f"{1e6 * o['torch_fused_s']:.0f} us, LSQ lean {1e6 * o['lsq_lean_s']:.0f} us "
                      f"({o['lean_over_torch']:.2f}x), LSQ plain {1e6 * o['lsq_plain_s']:.0f} us "
                      f"({o['plain_over_torch']:.2f}x)."]
        small = o.get('small')
        if small:
            lines[-1] += (f" Per-call overhead on a small {tuple(small['shape'])} tensor: torch "
                          f"{1e6 * small['torch_fused_s']:.0f} us, LSQ lean {1e6 * small['lsq_lean_s']:.0f} us "
                          f"({small['lean_over_torch']:.2f}x), plain {1e6 * small['lsq_plain_s']:.0f} us.")
    if result.get('targets'):
        lines += ['', '| target | measured | limit | met |', '|---|---:|---:|:---:|']
        lines += [f"| {t['target']} | {t['value']} | {t['limit']} | {'yes' if t['met'] else 'NO'} |"
                  for t in result['targets']]
    return '\n'.join(lines) + '\n'


def plot(result: Dict[str, Any], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = {v: r for v, r in result['rows'].items() if 'skipped' not in r}
    fp = rows.get('fp')
    names = [v for v in VARIANTS if v in rows]
    metrics = [('saved_bytes', 'saved for backward'), ('peak_above_start_bytes', 'peak memory (above start)'),
               ('step_time_s', 'step time')]
    fig, ax = plt.subplots(figsize=(9, 4))
    w = 0.8 / len(metrics)
    for i, (k, label) in enumerate(metrics):
        vals = [rows[v][k] / fp[k] if fp and fp[k] else rows[v][k] for v in names]
        ax.bar([j + i * w for j in range(len(names))], vals, w, label=label)
    ax.axhline(1.0, color='k', lw=0.8)
    ax.set_xticks([j + w for j in range(len(names))])
    ax.set_xticklabels([LABELS[v] for v in names], rotation=20)
    ax.set_ylabel('relative to FP')
    ax.set_title(result['name'])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(result: Dict[str, Any], prefix: str) -> List[str]:
    os.makedirs(osp.dirname(osp.abspath(prefix)), exist_ok=True)
    with open(prefix + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    with open(prefix + '.md', 'w') as f:
        f.write(to_markdown(result))
    plot(result, prefix + '.png')
    return [prefix + ext for ext in ('.json', '.md', '.png')]


def run_benchmark(task: Task, variants: Sequence[str], steps: int, calib_batches: int, *,
                  worker: Optional[Callable[[str, str], Dict[str, Any]]] = None, large_model: bool = False,
                  setup: str = '', overhead_calls: int = 50) -> Dict[str, Any]:
    """Calibrate/select once, then measure every variant (in ``worker(variant, state_file)``
    when given, else in this process). Returns the result dict."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f'unknown variant(s) {unknown}; allowed: {", ".join(VARIANTS)}')
    prep = prepare_quant_state(task, calib_batches)
    log(f"{prep['num_layers']} quantized layers; PTQAT trains {len(prep['small'])}")
    rows: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        state_file = osp.join(tmp, 'prep.pth')
        torch.save(prep, state_file)
        for v in variants:
            if v == 'modelopt':
                try:
                    import modelopt.torch.quantization  # noqa: F401
                except Exception as exc:  # not installed (or broken): the row says so
                    msg = f'modelopt not importable ({type(exc).__name__}: {exc}); pip install -r requirements-bench.txt'
                    log(f'skipping the ModelOpt row: {msg}')
                    rows[v] = dict(variant=v, skipped=msg)
                    continue
            log(f'variant {v}: {steps} step(s)')
            try:
                rows[v] = worker(v, state_file) if worker else run_variant(task, v, prep, steps)
            except Exception as exc:  # the row says why; main() exits non-zero (FAILED_VARIANTS)
                log(f'variant {v} FAILED: {type(exc).__name__}: {exc}')
                rows[v] = dict(variant=v, skipped=f'FAILED: {type(exc).__name__}: {str(exc)[:200]}', failed=True)
            r = rows[v]
            if 'skipped' not in r:
                log(f"  saved {r['saved_bytes'] / MIB:.1f} MiB, peak {r['peak_bytes'] / MIB:.0f} MiB, "
                    f"step {1e3 * r['step_time_s']:.0f} ms, trainable {r['trainable_params']:,}")
    log('fake-quant overhead')
    overhead = fake_quant_overhead(task.device, n=overhead_calls)
    overhead['small'] = fake_quant_overhead(task.device, (1, 16, 8, 8), n=4 * overhead_calls)
    load = os.getloadavg() if hasattr(os, 'getloadavg') else None
    result = dict(name=task.name, setup=setup, device=str(task.device),
                  device_name=torch.cuda.get_device_name(task.device) if task.device.type == 'cuda' else 'CPU',
                  torch=torch.__version__, threads=torch.get_num_threads(), loadavg_at_end=load,
                  num_quantized_layers=prep['num_layers'], ptqat_trainable_layers=len(prep['small']),
                  rows=rows, fake_quant=overhead)
    result['targets'] = targets(rows, overhead, large_model)
    return result


# --------------------------------------------------------------------------- mmdet3d task
def _synthetic_root(tmp: str, train_samples: int = 6) -> str:
    """A small synthetic nuScenes set (2 train / 1 val scene) with at least ``train_samples``
    training samples, in ``tmp``."""
    from ptqat.datasets.nuscenes_infos import create_nuscenes_infos
    from ptqat.datasets.synthetic import SyntheticNuScenesConfig, generate_synthetic_nuscenes
    per_scene = max(3, -(-train_samples // 2))
    log(f'generating a small synthetic nuScenes set in {tmp} (2 train scenes x {per_scene} samples)')
    generate_synthetic_nuscenes(tmp, SyntheticNuScenesConfig(version='v1.0-mini', train_scenes=2, val_scenes=1,
                                                             samples_per_scene=per_scene, cam_sweeps=1,
                                                             lidar_sweeps=1, lidar_azimuths=360, seed=3),
                                progress=False)
    create_nuscenes_infos(tmp, 'v1.0-mini')
    return tmp


def fixed_batch_loader_cfg(train_dataloader, root: str, batch_size: int):
    """A copy of the config's train dataloader reading ``root`` in order, in this process. A
    ``CBGSDataset`` wrapper (class-balanced resampling, e.g. BEVDepth4D-R50) is dropped: the
    benchmark runs fixed batches, where balancing plays no part."""
    import copy
    loader = copy.deepcopy(train_dataloader)
    if loader.dataset.get('type') == 'CBGSDataset':
        loader.dataset = loader.dataset.dataset
    loader.dataset.data_root = root
    loader.batch_size, loader.num_workers, loader.persistent_workers = batch_size, 0, False
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    return loader


def _batch_len(batch: Any) -> int:
    """Samples in a collated mmdet3d batch (``dict(inputs=..., data_samples=[...])``)."""
    samples = batch.get('data_samples') if isinstance(batch, dict) else None
    return len(samples) if samples is not None else -1


def check_batches(batches: List[Any], batch_size: int, n_batches: int, root: str) -> None:
    """Every fixed batch must hold ``batch_size`` samples: a short data set would otherwise
    silently measure a smaller batch than the table says."""
    if len(batches) < n_batches:
        raise ValueError(f'{root} yields {len(batches)} training batch(es) of {batch_size}; --batches asks for '
                         f'{n_batches}: use a larger --data-root or fewer --batches / a smaller --batch-size')
    sizes = [_batch_len(b) for b in batches]
    short = [n for n in sizes if 0 <= n < batch_size]
    if short:
        raise ValueError(f'{root}: fixed batches of {sizes} samples, --batch-size is {batch_size}: the data set has '
                         f'too few training samples; use a larger --data-root or a smaller --batch-size')


@torch.no_grad()
def estimate_bn_statistics(model: nn.Module, batches: Sequence[Any], forward: Callable[[nn.Module, Any], Any]) -> int:
    """Set every BatchNorm's running mean/variance to the average over ``batches`` of a
    train-mode forward (no gradients), as for a randomly initialised model whose statistics
    would otherwise be the initial 0 / 1. Returns the number of BatchNorm layers; the model is
    left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.train()
    for b in batches:
        forward(model, b)
    for m, mom in zip(norms, saved):
        m.momentum = mom
    model.eval()
    return len(norms)


def build_mm_task(config: str, checkpoint: str, data_root: str, batch_size: int, n_batches: int,
                  device: torch.device) -> Task:
    """BEVDet/BEVDepth4D (any PTQATModel config) with fixed batches of its train pipeline."""
    import copy
    sys.path.insert(0, osp.join(ROOT, 'projects'))
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from ptqat.engine.pipeline import make_forward_fn
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(config)
    if cfg.model.get('type') != 'PTQATModel':
        raise ValueError(f'{config}: model.type must be PTQATModel (a quantized config), got {cfg.model.get("type")!r}')
    root = data_root.rstrip('/') + '/'
    loader = fixed_batch_loader_cfg(cfg.train_dataloader, root, batch_size)
    torch.manual_seed(0)
    import numpy as np
    import random
    np.random.seed(0)
    random.seed(0)
    dl = Runner.build_dataloader(loader, seed=0)
    batches = []
    for b in dl:
        batches.append(b)
        if len(batches) == n_batches:
            break
    check_batches(batches, batch_size, n_batches, root)
    infer = make_forward_fn('tensor')
    if checkpoint != 'random':
        ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
        state = ckpt.get('state_dict', ckpt)
    else:  # initialisation (seed 0) + BatchNorm statistics of the fixed batches
        torch.manual_seed(0)
        fp = MODELS.build(copy.deepcopy(cfg.model.model)).to(device)
        log('random weights: estimating the BatchNorm statistics on the fixed batches')
        estimate_bn_statistics(fp, batches, infer)
        state = {k: v.cpu() for k, v in fp.state_dict().items()}
        del fp

    def load(model):
        from ptqat.quant import load_fp_state_dict, quantized_layers
        if quantized_layers(model):
            load_fp_state_dict(model, state)
        else:
            model.load_state_dict(state)
        return model

    def build_fp():
        torch.manual_seed(0)
        return load(MODELS.build(copy.deepcopy(cfg.model.model)))

    def build_quant():
        torch.manual_seed(0)
        return load(MODELS.build(copy.deepcopy(cfg.model)))

    def to_dev(batch):
        return batch  # the data preprocessor moves the batch to the model's device

    def loss(model, batch):
        data = model.data_preprocessor(to_dev(batch), training=True)
        losses = model(**data, mode='loss')
        total, _ = model.parse_losses(losses)
        return total

    return Task(name=osp.splitext(osp.basename(config))[0], build_fp=build_fp, build_quant=build_quant,
                batches=batches, loss=loss, forward=infer, device=device)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='a PTQATModel config')
    p.add_argument('checkpoint', help="float checkpoint, or 'random' for random weights")
    p.add_argument('--data-root', help='nuScenes-style data root with info files (default: generate a small '
                                       'synthetic set in a temporary directory)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--batches', type=int, default=2, help='fixed batches (cycled by the steps)')
    p.add_argument('--calib-batches', type=int, default=2)
    p.add_argument('--steps', type=int, default=5, help='timed steps per variant (after one warm-up step)')
    p.add_argument('--variants', default=','.join(VARIANTS))
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--out', help='output prefix (default docs/benchmark_ptqat_<config name>)')
    p.add_argument('--in-process', action='store_true', help='measure every variant in this process')
    p.add_argument('--large-model', action='store_true', help='check the peak-memory target (R50 models)')
    p.add_argument('--note', default='', help='free text put into the table header (e.g. machine load)')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    p.add_argument('--prep', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ('batch_size', 'batches', 'calib_batches', 'steps'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if args.checkpoint != 'random' and not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint!r} does not exist (or pass "random")')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    variants = [v.strip() for v in args.variants.split(',') if v.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or _synthetic_root(tmp, args.batch_size * args.batches)
        if args.worker:  # one variant in this (fresh) process; result as the last stdout line
            task = build_mm_task(args.config, args.checkpoint, root, args.batch_size, args.batches, device)
            prep = torch.load(args.prep, map_location='cpu', weights_only=True)
            print(json.dumps(run_variant(task, args.worker, prep, args.steps)))
            return {}
        log(f'building {args.config} ({args.checkpoint}), {args.batches} batch(es) of {args.batch_size}')
        task = build_mm_task(args.config, args.checkpoint, root, args.batch_size, args.batches, device)

        def worker(variant: str, prep_file: str) -> Dict[str, Any]:
            cmd = [sys.executable, osp.abspath(__file__), args.config, args.checkpoint, '--data-root', root,
                   '--batch-size', str(args.batch_size), '--batches', str(args.batches), '--steps', str(args.steps),
                   '--device', args.device, '--worker', variant, '--prep', prep_file]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or ['']
                if variant == 'modelopt':  # the optional peer: its row says why, the others still count
                    log(f'the ModelOpt worker failed: {tail[0]}')
                    return dict(variant=variant, skipped=f'modelopt failed: {tail[0]}')
                sys.stderr.write(proc.stderr[-4000:])  # run_benchmark records the row as failed
                raise RuntimeError(f'worker for {variant!r} failed with exit code {proc.returncode}: {tail[0]}')
            return json.loads(proc.stdout.strip().splitlines()[-1])

        weights = ('random weights (seed 0; BatchNorm statistics of the fixed batches)' if args.checkpoint == 'random'
                   else f'weights {osp.basename(args.checkpoint)}')
        data = args.data_root or 'a generated 3-scene synthetic nuScenes set'
        setup = (f'{weights}; batch {args.batch_size}; {args.batches} fixed training batches from {data}; '
                 f'calibration/selection on {args.calib_batches} of them; median of {args.steps} steps; '
                 f'device {device}. {args.note}').strip()
        result = run_benchmark(task, variants, args.steps, args.calib_batches,
                               worker=None if args.in_process else worker, large_model=args.large_model,
                               setup=setup)
    prefix = args.out or osp.join(ROOT, 'docs', f'benchmark_ptqat_{task.name}')
    for path in write_outputs(result, prefix):
        log(f'wrote {path}')
    print(to_markdown(result))
    failed = [v for v, r in result['rows'].items() if r.get('failed')]
    if failed:
        raise SystemExit(f'benchmark_ptqat: variant(s) {failed} failed (see their rows and the log above)')
    return result


if __name__ == '__main__':
    main()
