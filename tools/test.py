"""Evaluate a checkpoint (FP, PTQ, QAT or PTQAT) with the config's test evaluator.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options ...]

For a PTQ config and an FP checkpoint, the config's PTQATHook calibrates the quantizers
before testing; a PTQAT/QAT checkpoint already holds its step sizes.
"""
import argparse
import os
import sys

if __name__ == '__main__':  # --deterministic: fix the process settings before torch is imported
    from _determinism import reexec_if_needed
    reexec_if_needed(sys.argv)

from _runner_utils import add_common_args, build_runner, distributed_session, load_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test (and evaluate) a 3D detector')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--out', help='also write the metrics to this JSON file')
    add_common_args(p)
    return p.parse_args(argv)


def check_checkpoint(path: str) -> None:
    """Exit at once, naming ``path``, unless it is a file (or a URL, which mmengine fetches):
    otherwise the error would come only after the whole set-up (model, data, hooks)."""
    if '://' in path:
        return
    if os.path.isdir(path):
        raise SystemExit(f'checkpoint {path!r} is a directory; give the .pth file in it '
                         '(its last_checkpoint file names the latest)')
    if not os.path.isfile(path):
        raise SystemExit(f'checkpoint {path!r} not found')


def main(argv=None):
    args = parse_args(argv)
    check_checkpoint(args.checkpoint)
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    with distributed_session():
        metrics = build_runner(cfg).test()
        if args.out:
            import json
            import os.path as osp
            from mmengine.dist import is_main_process
            if is_main_process():
                os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
                with open(args.out, 'w') as f:
                    json.dump({k: float(v) for k, v in metrics.items()}, f, indent=1)
    return metrics


if __name__ == '__main__':
    main()
