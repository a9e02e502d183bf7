"""Where and why an exported Q/DQ detector's onnxruntime outputs differ from PyTorch's fake-quant
outputs: per head map the max |difference| relative to the map's range, and per activation
quantizer how many 8-bit codes flip between the two, with the cause at the first flip.

    python tools/onnx_divergence.py CONFIG CHECKPOINT [--calibrate N] [--samples K] [--out FILE]

The checkpoint's detector is exported (ptqat.deploy.export_detector, into a temporary
directory) and the graph is run with onnxruntime (graph optimisations off: the float Q/DQ
semantics) on test samples 0..K-1; PyTorch runs the same traced module (``DeployDetector``) on
the same inputs (a temporal model's ``prev_bev`` is the same zero map on both sides). Every
activation QuantizeLinear input and DequantizeLinear output is added to the graph outputs and
compared with the PyTorch quantizer's input and output. ``--calibrate N`` calibrates the
quantizers on N test samples first (PTQ from a float checkpoint). See README "Deployment".
"""
import argparse
import json
import os.path as osp
import sys
import tempfile

from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'projects'))
from _runner_utils import read_config  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='PyTorch fake-quant vs onnxruntime: output differences and code flips')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--calibrate', type=int, default=0, help='calibrate on N test samples first (PTQ)')
    p.add_argument('--samples', type=int, default=2, help='test samples compared (default 2)')
    p.add_argument('--out', help='write the report (JSON) here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if args.samples < 1 or args.calibrate < 0:
        p.error(f'need --samples >= 1 and --calibrate >= 0, got {args.samples}, {args.calibrate}')
    return args


def _graph_with_taps(onnx_path: str):
    """The model with every activation Q input / DQ output as an extra graph output:
    ``(model bytes, {scope: (q_input_name, dq_output_name, scale_name)})``."""
    import onnx
    from ptqat.deploy.inspect import onnx_scope_name
    model = onnx.load(onnx_path)
    g = model.graph
    inits = {t.name for t in g.initializer}
    consts = {n.output[0] for n in g.node if n.op_type == 'Constant'}
    readers = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    taps = {}
    for n in g.node:
        if n.op_type != 'QuantizeLinear' or n.input[0] in inits or n.input[0] in consts:
            continue
        dq = [r for r in readers.get(n.output[0], []) if r.op_type == 'DequantizeLinear']
        if len(dq) != 1:
            continue
        taps[onnx_scope_name(n.name)] = (n.input[0], dq[0].output[0], n.input[1])
    existing = {o.name for o in g.output}
    for q_in, dq_out, _ in taps.values():
        for name in (q_in, dq_out):
            if name not in existing:
                g.output.append(onnx.helper.make_empty_tensor_value_info(name))
                existing.add(name)
    return model.SerializeToString(), taps


def compare(detector, dataset, samples: int, work: str) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    from ptqat.deploy import DeployDetector, export_detector, frame_inputs, graph_feed
    from ptqat.deploy.build import preprocess_samples
    from ptqat.quant import LSQQuantizer
    from ptqat.quant.fused import lean_disabled

    inputs, _ = preprocess_samples(detector, [dataset[0]])
    side = export_detector(detector, inputs, work)
    graph, taps = _graph_with_taps(osp.join(work, side['files']['model']))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(graph, opts, providers=['CPUExecutionProvider'])
    out_names = [o.name for o in sess.get_outputs()]
    deploy = DeployDetector(detector).eval()
    names = {}   # every name of every quantizer (a shared one has several)
    for name, m in detector.named_modules(remove_duplicate=False):   # graph scopes start below `detector.`
        if isinstance(m, LSQQuantizer):
            names[name] = m
    captured = {}

    def hook(mod, args, out):
        captured.setdefault(id(mod), []).append((args[0].detach().clone(), out.detach().clone()))
    if not any(scope in names for scope in taps):
        raise RuntimeError(f'no activation Q/DQ of the graph maps to a quantizer: graph scopes {list(taps)[:3]}, '
                           f'quantizers {list(names)[:3]}')
    handles = [m.register_forward_hook(hook) for m in {id(m): m for m in names.values()}.values()]
    heads = {}
    per_q = {}
    order = []
    try:
        for i in range(samples):
            inp, _ = preprocess_samples(detector, [dataset[i]])
            frame = frame_inputs(detector, inp)[0]
            prev = None
            if deploy.temporal:
                shape = [o['shape'] for o in side['outputs'] if o['name'] == 'cur_bev'][0]
                prev = torch.zeros(1, shape[1] * detector.num_adj, *shape[2:])
            feed = graph_feed(deploy, frame, prev)
            res = dict(zip(out_names, sess.run(None, feed)))
            captured.clear()
            with torch.no_grad(), lean_disabled():   # the plain path calls the quantizer modules (hooks)
                ref = deploy(*[torch.from_numpy(feed[k]) for k in deploy.input_names()])
            # PyTorch again, every activation quantizer's output replaced by onnxruntime's DQ output
            # (its codes, flips included): what is left is the float arithmetic between quantizers
            by_id = {id(names[sc]): torch.from_numpy(res[dq]) for sc, (_, dq, _) in taps.items() if sc in names}
            first_pass = dict(captured)
            forced_handles = [m.register_forward_hook(lambda mod, a, o: by_id.get(id(mod), o).to(o.dtype)
                                                      if by_id.get(id(mod)) is not None
                                                      and by_id[id(mod)].shape == o.shape else o)
                              for m in {id(m): m for m in names.values()}.values()]
            try:
                with torch.no_grad(), lean_disabled():
                    forced = deploy(*[torch.from_numpy(feed[k]) for k in deploy.input_names()])
            finally:
                for h in forced_handles:
                    h.remove()
            captured.clear()
            captured.update(first_pass)
            for k, r, f in zip(deploy.output_names(), ref, forced):
                r, f = r.numpy(), f.numpy()
                d = float(np.abs(res[k] - r).max())
                df = float(np.abs(res[k] - f).max())
                rng = float(r.max() - r.min())
                row = heads.setdefault(k, dict(max_abs=0.0, range=rng, rel=0.0, forced_max_abs=0.0, forced_rel=0.0))
                row['max_abs'] = max(row['max_abs'], d)
                row['rel'] = max(row['rel'], d / max(rng, 1e-12))
                row['forced_max_abs'] = max(row['forced_max_abs'], df)
                row['forced_rel'] = max(row['forced_rel'], df / max(rng, 1e-12))
            for scope, (q_in, dq_out, _) in taps.items():
                q = names.get(scope)
                if q is None or id(q) not in captured:
                    continue
                x_pt, y_pt = captured[id(q)][0]
                x_ort, y_ort = torch.from_numpy(res[q_in]), torch.from_numpy(res[dq_out])
                if x_pt.shape != x_ort.shape:
                    continue
                s = float(q.effective_step_size().reshape(-1)[0])
                c_pt, c_ort = torch.round(y_pt / s), torch.round(y_ort / s)
                flip = c_pt != c_ort
                in_diff = (x_pt - x_ort).abs()
                row = per_q.setdefault(scope, dict(elements=0, flips=0, max_code_diff=0, max_input_diff=0.0,
                                                   input_scale=s))
                if scope not in order:
                    order.append(scope)
                row['elements'] += flip.numel()
                row['flips'] += int(flip.sum())
                row['max_code_diff'] = max(row['max_code_diff'], int((c_pt - c_ort).abs().max()))
                row['max_input_diff'] = max(row['max_input_diff'], float(in_diff.max()))
                if flip.any():
                    v = (x_pt / s)[flip]
                    tie = (v - torch.floor(v) - 0.5).abs()  # distance of x/s to the rounding boundary
                    row['max_tie_distance_of_flips'] = max(row.get('max_tie_distance_of_flips', 0.0),
                                                           float(tie.max()))
                    row['max_input_diff_at_flips_in_steps'] = max(
                        row.get('max_input_diff_at_flips_in_steps', 0.0), float(in_diff[flip].max()) / s)
    finally:
        for h in handles:
            h.remove()
    flipped = [k for k in order if per_q[k]['flips']]
    first = flipped[0] if flipped else None
    upstream_identical = None
    if first is not None:
        upstream = order[:order.index(first)]
        upstream_identical = all(per_q[k]['flips'] == 0 for k in upstream)
    total = sum(r['elements'] for r in per_q.values())
    return dict(heads=heads, quantizers=per_q, execution_order=order,
                summary=dict(samples=samples, quantizers_compared=len(per_q), quantizers_with_flips=len(flipped),
                             flipped_codes=sum(per_q[k]['flips'] for k in flipped), codes=total,
                             first_flip=first, first_flip_row=per_q.get(first),
                             quantizers_before_first_flip_all_identical=upstream_identical,
                             max_rel_head_diff=max(h['rel'] for h in heads.values()),
                             max_rel_head_diff_with_ort_codes=max(h['forced_rel'] for h in heads.values())))


def main(argv=None):
    args = parse_args(argv)
    cfg = read_config(args.config, args.cfg_options)
    from ptqat.deploy.build import build_detector, build_test_dataset, preprocess_samples
    from ptqat.quant import calibrate
    detector = build_detector(cfg, args.checkpoint)
    dataset = build_test_dataset(cfg)
    if args.samples > len(dataset) or args.calibrate > len(dataset):
        raise SystemExit(f'the test set has {len(dataset)} samples')
    if args.calibrate:
        batches = [preprocess_samples(detector, [dataset[i]])[0] for i in range(args.calibrate)]
        calibrate(detector, batches, lambda m, b: m._forward(b), progress=False)
    with tempfile.TemporaryDirectory() as work:
        report = compare(detector, dataset, args.samples, work)
    print(json.dumps(dict(heads=report['heads'], summary=report['summary']), indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
