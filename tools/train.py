"""Train a detector (FP, or PTQ / QAT / PTQAT with a ptqat config) with the mmengine Runner.

    python tools/train.py configs/ptqat/bevdet/bevdet-tiny_ptqat-w4a8_synth.py \
        --cfg-options load_from=work_dirs/bevdet-tiny_synth/epoch_24.pth
"""
import argparse
import sys

if __name__ == '__main__':  # --deterministic: fix the process settings before torch is imported
    from _determinism import reexec_if_needed
    reexec_if_needed(sys.argv)

from _runner_utils import add_common_args, build_runner, distributed_session, load_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a 3D detector')
    p.add_argument('config', help='train config file path')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    p.add_argument('--auto-scale-lr', action='store_true', help='scale the LR by the batch size')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from this checkpoint, or (no value) from the latest in work_dir')
    add_common_args(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
            raise SystemExit(f'--amp needs optim_wrapper.type OptimWrapper, got {cfg.optim_wrapper.type!r}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    with distributed_session():
        build_runner(cfg).train()


if __name__ == '__main__':
    main()
