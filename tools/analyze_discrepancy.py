"""Rank the quantized layers of a ptqat config by their quantization discrepancy (no training).

    python tools/analyze_discrepancy.py CONFIG CHECKPOINT [--calib-batches N] [--metric l2]
        [--mode local] [--strategy small] [--ratio 0.5 | --threshold T|auto] [--ratio-by layers|params]
        [--auto-rule knee|knee-log|budget] [--param-budget N|SHARE]
        [--out-dir DIR]
        [--top K] [--recalibrate] [--save-calibrated] [--work-dir DIR] [--cfg-options ...]
        [--launcher none|pytorch|slurm|mpi]

Builds the quantized model, the dataloader and the data preprocessor of CONFIG through the
mmengine Runner, loads CHECKPOINT (normally the float one), calibrates the quantizers (only
when they are uninitialised, or always with ``--recalibrate``), measures Dis(X_Q, X) per
quantized layer, selects the layers PTQATHook would fine-tune and writes
``discrepancy.json/.csv/.png`` into ``--out-dir`` (default ``<work_dir>/analysis``), printing
the ranking. Settings default to the config's PTQATHook; the options override them.
Uses exactly the code of PTQATHook (``PTQATHook.analyze``).
"""
import argparse
import os.path as osp
import sys

if __name__ == '__main__':  # --deterministic: fix the process settings before torch is imported
    from _determinism import reexec_if_needed
    reexec_if_needed(sys.argv)

from _runner_utils import add_common_args, build_runner, load_config

from ptqat.quant import AUTO_RULES, METRICS, MODES, RATIO_BY, STRATEGIES


def _threshold_arg(text: str):
    if text == 'auto':
        return 'auto'
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number >= 0 or 'auto', got {text!r}") from None


def _budget_arg(text: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'a parameter count (integer) or a share in (0, 1), got {text!r}') from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='a ptqat config (model type PTQATModel)')
    p.add_argument('checkpoint', help='the checkpoint to analyse (normally the float one)')
    p.add_argument('--calib-batches', type=int, help='calibration/measurement batches (total over ranks)')
    p.add_argument('--metric', choices=METRICS)
    p.add_argument('--mode', choices=MODES)
    p.add_argument('--strategy', choices=STRATEGIES)
    sel = p.add_mutually_exclusive_group()
    sel.add_argument('--ratio', type=float, help='fraction of the layers to select')
    sel.add_argument('--threshold', type=_threshold_arg,
                     help="select by Dis threshold instead of a ratio; 'auto': θ from the sorted curve "
                          '(--auto-rule, --param-budget)')
    p.add_argument('--auto-rule', choices=AUTO_RULES,
                   help="with --threshold auto: 'knee' (default), 'knee-log' or 'budget' (default with --param-budget)")
    p.add_argument('--param-budget', type=_budget_arg,
                   help="with --threshold auto: at most this many trainable parameters (integer) or this share "
                        'of the quantized layers\' parameters (0 < x < 1)')
    p.add_argument('--ratio-by', choices=RATIO_BY,
                   help="what --ratio counts: 'layers' (default) or 'params' (share of the weights)")
    p.add_argument('--seed', type=int, help="seed of strategy 'random'")
    p.add_argument('--out-dir', help='where the JSON/CSV/PNG go (default: <work_dir>/analysis)')
    p.add_argument('--top', type=int, default=None, help='print only the first K rows of the ranking')
    p.add_argument('--recalibrate', action='store_true',
                   help='calibrate even if the checkpoint already has initialised step sizes')
    p.add_argument('--save-calibrated', action='store_true',
                   help='also write the calibrated model to <out-dir>/ptq_calibrated.pth')
    p.add_argument('--progress', action='store_true', help='progress bars')
    add_common_args(p)
    return p.parse_args(argv)


def hook_settings(cfg, args) -> dict:
    """The config's PTQATHook arguments with the command-line overrides applied."""
    hooks = list(cfg.get('custom_hooks') or [])
    base = next((dict(h) for h in hooks if h.get('type') == 'PTQATHook'), {})
    base.pop('type', None)
    if args.strategy is not None and args.strategy != base.get('strategy'):
        base.update(strategy=args.strategy, ratio=None, threshold=None)
    if args.ratio is not None:
        base.update(ratio=args.ratio, threshold=None)
    if args.threshold is not None:
        base.update(threshold=args.threshold, ratio=None)
    if args.ratio is not None or args.threshold is not None:
        base.pop('auto_rule', None)
        base.pop('param_budget', None)
    for key in ('calib_batches', 'metric', 'mode', 'seed', 'ratio_by', 'auto_rule', 'param_budget'):
        value = getattr(args, key)
        if value is not None:
            base[key] = value
    base.update(recalibrate=args.recalibrate, progress=args.progress)
    return base


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    from ptqat.engine import PTQATHook, format_summary  # noqa: F401  (after the config's imports)
    try:
        hook = PTQATHook(**hook_settings(cfg, args))
    except (TypeError, ValueError) as e:
        sys.exit(f'analyze_discrepancy: {e}')
    out_dir = args.out_dir or osp.join(cfg.work_dir, 'analysis')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    # the tool drives the analysis itself; the hook of the config must not act as well
    cfg.custom_hooks = [h for h in (cfg.get('custom_hooks') or []) if h.get('type') != 'PTQATHook']
    runner = build_runner(cfg)
    runner.load_or_resume()
    result = hook.analyze(runner, write=True, out_dir=out_dir)
    from mmengine.dist import is_main_process
    if args.save_calibrated:
        hook.save_calibrated_checkpoint(runner, hook.quantized_model(runner), out_dir)
    if is_main_process():
        print(hook.ranking_table(runner, args.top))
        s = result.settings
        how = '' if s.strategy in ('all', 'none') else (
            f', ratio={s.ratio}' + (' of the parameters' if s.ratio_by == 'params' else '')
            if s.threshold is None else f', threshold={s.threshold!r}'
            + (f' ({s.auto_rule})' if s.threshold == 'auto' else ''))
        theta = '' if result.theta is None else f'; effective threshold θ = {result.theta:.6g}'
        print(f'selected {len(result.selected)} of {len(result.discrepancy)} measured layers '
              f'(strategy={s.strategy!r}{how}{theta})')
        for path in hook.report_paths.values():
            print(f'wrote {path}')
    return result


if __name__ == '__main__':
    main()
