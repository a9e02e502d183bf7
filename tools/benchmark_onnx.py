"""Latency and file size of the exported detectors on onnxruntime's CPU provider: FP32 ONNX vs
Q/DQ ONNX (INT8 Q/DQ with the 4-bit grids baked in) vs packed INT4 weights.

    python tools/benchmark_onnx.py [--models bevdet-tiny bevdepth4d-tiny bevdet-r50 bevdepth4d-r50]
        [--runs 5] [--warmup 2] [--threads 1] [--out work_dirs/benchmark_onnx.json] [--placement]

Per model: the FP config and its PTQAT W4A8 config are built with their initial weights
(latency does not depend on the values), the quantized one is calibrated on one synthetic
input, both are exported with ptqat.deploy.export_detector for a synthetic six-camera ring rig
at the config's input size, batch 1, and each graph is timed with onnxruntime
(ORT_ENABLE_ALL, CPUExecutionProvider, `--threads` intra-op threads): the median over `--runs`
timed runs after `--warmup` untimed ones, the variants taking turns run by run (so load from
other jobs falls on all alike), one graph run = one frame (a temporal model's prev_bev is an
input). ``--placement`` adds the quantized config with the ModelOpt / TensorRT Q/DQ placement
(``share_input_quantizers``, ``quantize_residual_adds='residual'``) to the rotation. The
machine's CPUs may be shared with other jobs: compare the columns of one run, not runs of
different days.
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'projects'))

#: name -> (FP config, quantized config)
MODELS = {
    'bevdet-tiny': ('configs/bevdet/bevdet-tiny_synth.py', 'configs/ptqat/bevdet/bevdet-tiny_ptqat-w4a8_synth.py'),
    'bevdepth4d-tiny': ('configs/bevdepth4d/bevdepth4d-tiny_synth.py',
                        'configs/ptqat/bevdepth4d/bevdepth4d-tiny_ptqat-w4a8_synth.py'),
    'bevdet-r50': ('configs/bevdet/bevdet-r50_8xb8-24e_nus.py', 'configs/ptqat/bevdet/bevdet-r50_ptqat-w4a8_nus.py'),
    'bevdepth4d-r50': ('configs/bevdepth4d/bevdepth4d-r50_8xb8-cbgs-20e_nus.py',
                       'configs/ptqat/bevdepth4d/bevdepth4d-r50_ptqat-w4a8_nus.py'),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='ONNX Runtime CPU latency: FP32 vs Q/DQ detectors')
    p.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default='work_dirs/benchmark_onnx.json')
    p.add_argument('--keep', help='keep the exported graphs in this directory')
    p.add_argument('--placement', action='store_true',
                   help='also time the quantized config with the ModelOpt / TensorRT Q/DQ placement '
                        '(share_input_quantizers=True, quantize_residual_adds=residual): column qdq_placed_int8')
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        p.error(f'need --runs >= 1, --warmup >= 0, --threads >= 1; got {args.runs}, {args.warmup}, {args.threads}')
    return args


def ring_rig_inputs(detector, seed: int = 0):
    """Synthetic data-preprocessor inputs (batch 1): six cameras 60 degrees apart, 1.5 m high,
    looking outwards; a temporal model's adjacent frames 1 m behind the current one."""
    import torch
    vt = detector.img_view_transformer
    h, w = vt.input_size
    n = getattr(detector, 'num_cams', 6)
    t = getattr(detector, 'num_frames', 1)
    s2e = []
    for f in range(t):
        for c in range(n):
            yaw = math.radians(60.0 * c)
            fwd = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
            right = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
            m = torch.eye(4)
            m[:3, 0], m[:3, 1], m[:3, 2] = right, torch.tensor([0.0, 0.0, -1.0]), fwd
            m[:3, 3] = torch.tensor([-1.0 * f, 0.0, 1.5])
            s2e.append(m)
    k = torch.tensor([[0.8 * w, 0.0, w / 2.0], [0.0, 0.8 * w, h / 2.0], [0.0, 0.0, 1.0]])
    g = torch.Generator().manual_seed(seed)
    return dict(imgs=torch.randn(1, t * n, 3, h, w, generator=g),
                sensor2keyegos=torch.stack(s2e)[None], intrins=k.expand(1, t * n, 3, 3).clone(),
                post_rots=torch.eye(3).expand(1, t * n, 3, 3).clone(), post_trans=torch.zeros(1, t * n, 3),
                bda=torch.eye(4)[None])


#: quantization options of the --placement variant
PLACEMENT = dict(share_input_quantizers=True, quantize_residual_adds='residual')


def build(cfg_file: str, quantization: dict = None):
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS as REG
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(osp.join(ROOT, cfg_file))
    if quantization:
        cfg.model.quantization = dict(cfg.model.quantization, **quantization)
    return REG.build(cfg.model).float().eval()


def time_graphs(paths: dict, feed: dict, runs: int, warmup: int, threads: int) -> dict:
    """Median / min latency in ms of each graph over ``runs`` timed runs after ``warmup``
    untimed ones. The graphs take turns run by run, so load from other jobs on a shared CPU
    falls on all of them alike."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sessions = {k: ort.InferenceSession(p, opts, providers=['CPUExecutionProvider']) for k, p in paths.items()}
    times = {k: [] for k in paths}
    for i in range(warmup + runs):
        for k, sess in sessions.items():
            t0 = time.perf_counter()
            sess.run(None, feed)
            if i >= warmup:
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: dict(median_ms=statistics.median(t), min_ms=min(t), runs=runs, warmup=warmup)
            for k, t in times.items()}


def bench_model(name: str, args, work: str) -> dict:
    import torch
    from ptqat.deploy import DeployDetector, export_detector, frame_inputs, graph_feed
    from ptqat.quant import calibrate
    fp_cfg, q_cfg = MODELS[name]
    row = dict(model=name, fp_config=fp_cfg, quant_config=q_cfg)
    paths, feed = {}, None
    kinds = [('fp32', fp_cfg), ('qdq', q_cfg)] + ([('qdq_placed', q_cfg)] if args.placement else [])
    for kind, cfg_file in kinds:
        torch.manual_seed(0)
        det = build(cfg_file, PLACEMENT if kind == 'qdq_placed' else None)
        inputs = ring_rig_inputs(det)
        if kind != 'fp32':
            calibrate(det, [inputs], lambda m, b: m._forward(b), progress=False)
        out = osp.join(work, f'{name}_{kind}')
        side = export_detector(det, inputs, out, weights_int4=(kind == 'qdq'))
        if feed is None:   # the same rig, so the same feed for every variant
            deploy = DeployDetector(det)
            prev = None
            if deploy.temporal:
                shape = [o['shape'] for o in side['outputs'] if o['name'] == 'cur_bev'][0]
                prev = torch.zeros(1, shape[1] * det.num_adj, *shape[2:])
            feed = graph_feed(deploy, frame_inputs(det, inputs)[0], prev)
            row['inputs'] = {k: list(v.shape) for k, v in feed.items()}
        files = {'fp32': [('fp32', 'model')], 'qdq': [('qdq_int8', 'model'), ('qdq_int4', 'model_int4')],
                 'qdq_placed': [('qdq_placed_int8', 'model')]}[kind]
        for label, key in files:
            paths[label] = osp.join(out, side['files'][key])
        del det
    for label, timing in time_graphs(paths, feed, args.runs, args.warmup, args.threads).items():
        row[label] = dict(file_mb=os.path.getsize(paths[label]) / 2 ** 20, **timing)
        print(f'{name} {label}: {row[label]}', flush=True)
    return row


def main(argv=None):
    args = parse_args(argv)
    import onnxruntime as ort
    import torch
    result = dict(how=dict(provider='CPUExecutionProvider', graph_optimization='ORT_ENABLE_ALL',
                           threads=args.threads, runs=args.runs, warmup=args.warmup, batch=1,
                           statistic='median latency of one graph run (one frame), warm-up excluded',
                           onnxruntime=ort.__version__, torch=torch.__version__, cpu=platform.processor()
                           or platform.machine(), cpu_count=os.cpu_count(),
                           note='CPUs shared with other jobs while measured'),
                  models=[])
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        for name in args.models:
            result['models'].append(bench_model(name, args, work))
            os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
            with open(args.out, 'w') as f:
                json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
    return result


if __name__ == '__main__':
    main()
