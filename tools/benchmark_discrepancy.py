"""Peak memory and time of ``discrepancy_per_sample`` against the former float64 formula.

    python tools/benchmark_discrepancy.py [--shape 8,64,128,352] [--metric l2] [--device cpu|cuda]
        [--dtype float32|float16] [--repeats 3]

Each variant runs in a fresh subprocess on a pair of random tensors of ``--shape`` (default:
the ResNet-50 stem output of 8 images of 256x704, the size the issue reported +3 GB for at
6 cameras). Peak memory is measured as the increase over the inputs: on CUDA with
``torch.cuda.max_memory_allocated``, on CPU with the process's peak resident set size
(``ru_maxrss``). The former formula is kept here only as the reference.
"""
import argparse
import json
import math
import resource
import subprocess
import sys
import time


def former(xq, x, metric):
    """The pre-fix implementation: float64 copies of both tensors and of their difference."""
    import torch
    a = xq.detach().double().reshape(x.shape[0], -1)
    b = x.detach().to(a.device).double().reshape(a.shape)
    d = a - b
    dn = d.norm(dim=1)
    if metric == 'l2':
        return dn
    if metric == 'mse':
        return d.pow(2).mean(dim=1)
    if metric == 'relative':
        return dn / b.norm(dim=1).clamp_min(1e-12)
    cos = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return torch.where(dn == 0, torch.zeros_like(cos), 1.0 - cos)


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def worker(variant: str, shape, metric: str, device: str, dtype: str, repeats: int) -> dict:
    """Run one variant in this process; returns peak extra bytes, seconds per call, result."""
    import torch
    from ptqat.quant import discrepancy_per_sample
    torch.manual_seed(0)
    x = torch.randn(*shape, device=device, dtype=getattr(torch, dtype))
    xq = x + 0.01 * torch.randn_like(x)
    fn = former if variant == 'former' else discrepancy_per_sample
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(xq, x, metric)
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() if device == 'cuda' else _rss_bytes()) - base
    return dict(variant=variant, peak_extra_mb=peak / 2**20, seconds=min(times), result=out.double().cpu().tolist())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--shape', default='8,64,128,352', help='comma-separated (N, ...) of the layer output')
    p.add_argument('--metric', default='l2', choices=['l2', 'mse', 'relative', 'cosine'],
                   help='a metric the former implementation had')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--dtype', default='float32', choices=['float32', 'float16', 'bfloat16'])
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--worker', choices=['former', 'current'], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    shape = [int(s) for s in args.shape.split(',')]
    if args.worker:
        print(json.dumps(worker(args.worker, shape, args.metric, args.device, args.dtype, args.repeats)))
        return None
    rows = {}
    for variant in ('former', 'current'):
        cmd = [sys.executable, __file__, '--worker', variant, '--shape', args.shape, '--metric', args.metric,
               '--device', args.device, '--dtype', args.dtype, '--repeats', str(args.repeats)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows[variant] = json.loads(out.strip().splitlines()[-1])
    input_mb = math.prod(shape) * (4 if args.dtype == 'float32' else 2) / 2**20
    worst = max(abs(a - b) / max(abs(a), 1e-30) for a, b in zip(rows['former']['result'], rows['current']['result']))
    print(f'shape {shape} {args.dtype} on {args.device}, metric {args.metric}: one input = {input_mb:.0f} MiB')
    for variant, r in rows.items():
        print(f'  {variant:8s} peak extra memory {r["peak_extra_mb"]:8.0f} MiB   {r["seconds"] * 1e3:8.1f} ms')
    print(f'  max relative difference of the results: {worst:.2e}')
    return rows


if __name__ == '__main__':
    main()
