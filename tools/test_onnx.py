"""Evaluate an exported detector (tools/export_onnx.py) with onnxruntime on the config's test set,
with the config's test evaluator (the same NuScenesMetric as tools/test.py).

    python tools/test_onnx.py CONFIG EXPORT_DIR [--model model|model_int4] [--out metrics.json]

Every network layer runs in the ONNX graph (CPU provider); the host side (pooling indices from
each sample's cameras, the adjacent frame's BEV map, box decoding + NMS, the LiDAR-frame
mapping) is the PyTorch detector's non-network code, so NDS / mAP are comparable with
``tools/test.py CONFIG CHECKPOINT`` on the checkpoint the graph was exported from.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'projects'))
from _runner_utils import read_config  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Evaluate an exported ONNX detector with onnxruntime')
    p.add_argument('config')
    p.add_argument('export_dir', help='directory written by tools/export_onnx.py')
    p.add_argument('--model', default='model', choices=['model', 'model_int4'])
    p.add_argument('--out', help='also write the metrics to this JSON file')
    p.add_argument('--no-optimize', action='store_true',
                   help='onnxruntime graph optimisations off (exact float Q/DQ semantics)')
    p.add_argument('--threads', type=int, default=1, help='onnxruntime intra-op threads (default 1)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return p.parse_args(argv)


def evaluate_onnx(cfg, export_dir: str, model: str = 'model', optimize: bool = True, threads: int = 1) -> dict:
    """Run the graph over ``cfg.test_dataloader`` and return ``cfg.test_evaluator``'s metrics."""
    import ptqat.checkpoint_compat  # noqa: F401
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from ptqat.deploy import OrtDetector
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    detector = MODELS.build(cfg.model).float().eval()   # host side only: its weights are not used
    runner = OrtDetector(export_dir, detector, model=model, optimize=optimize, threads=threads)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    for batch in loader:
        data = detector.data_preprocessor(batch, False)
        preds = runner.predict(data['inputs'], data['data_samples'])
        evaluator.process(data_samples=preds, data_batch=batch)
    return evaluator.evaluate(len(loader.dataset))


def main(argv=None):
    args = parse_args(argv)
    cfg = read_config(args.config, args.cfg_options)
    if not osp.isfile(osp.join(args.export_dir, 'deploy.json')):
        raise SystemExit(f'{args.export_dir!r} has no deploy.json: run tools/export_onnx.py first')
    metrics = evaluate_onnx(cfg, args.export_dir, args.model, not args.no_optimize, args.threads)
    metrics = {k: float(v) for k, v in metrics.items()}
    print(json.dumps(metrics, indent=1))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=1)
    return metrics


if __name__ == '__main__':
    main()
