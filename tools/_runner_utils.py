"""Shared set-up of tools/train.py and tools/test.py (mmdet3d's conventions)."""
import argparse
import logging
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Optional

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

import ptqat.checkpoint_compat  # noqa: F401  (mmengine checkpoints under torch >= 2.6)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (e.g. load_from=fp.pth '
                             'train_dataloader.batch_size=2)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.run passes --local-rank (torch >= 2.0) / older launchers --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--allow-partial-checkpoint', action='store_true',
                        help='load a checkpoint that lacks some float weights of the model or has other shapes '
                             '(checkpoint_check.allow_partial; default: refuse, naming the keys)')
    parser.add_argument('--deterministic', action='store_true',
                        help='bit-identical reruns on the same machine: randomness.deterministic=True '
                             '(torch.use_deterministic_algorithms), --threads intra-op threads, fixed hash seed '
                             'and MKL reproducibility mode (the script re-executes itself once with them); '
                             'the seed is randomness.seed (0 when the config has none)')
    parser.add_argument('--threads', type=int, default=None,
                        help='with --deterministic: intra-op threads (default 1; more than 1 was seen to '
                             'differ from run to run on CPU)')
    parser.add_argument('--accept-quantization-mismatch', action='store_true',
                        help="load only the float weights of a checkpoint whose quantization settings differ "
                             "from the config's (checkpoint_check.accept_quantization_mismatch; default: refuse)")


def read_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """The config file with its ``--cfg-options`` merged in; a missing file exits naming it."""
    if not osp.isfile(path):
        raise SystemExit(f'config file {path!r} not found')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_config(args) -> Config:
    """Config with CLI overrides, launcher, work dir and a CPU-safe distributed backend."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise SystemExit(f'config file {args.config!r} not found')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    for flag, key in (('allow_partial_checkpoint', 'allow_partial'),
                      ('accept_quantization_mismatch', 'accept_quantization_mismatch')):
        if getattr(args, flag, False):
            cfg.checkpoint_check = dict(cfg.get('checkpoint_check') or {}, **{key: True})
    apply_calib_batches(cfg, args.cfg_options or {})
    apply_deterministic(cfg, args)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.launcher != 'none':
        import torch
        if not torch.cuda.is_available():
            env = cfg.setdefault('env_cfg', {})
            dist_cfg = env.setdefault('dist_cfg', {})
            if dist_cfg.get('backend', 'nccl') == 'nccl':
                dist_cfg['backend'] = 'gloo'
                print_log('no CUDA: distributed backend set to gloo', logger='current',
                          level=logging.INFO)
            if args.launcher == 'pytorch':
                _init_cpu_process_group(dist_cfg['backend'])
            # DDP on CPU modules takes device_ids=None (mmengine defaults to [LOCAL_RANK])
            wrapper = cfg.get('model_wrapper_cfg') or dict(
                type='MMDistributedDataParallel', broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
            wrapper['device_ids'] = None
            cfg.model_wrapper_cfg = wrapper
    return cfg


def apply_deterministic(cfg: Config, args) -> None:
    """``--deterministic``: ``randomness = dict(seed=<the config's, else 0>, deterministic=True)``
    (mmengine then calls ``torch.use_deterministic_algorithms(True)``), ``torch.set_num_threads``
    to ``--threads`` (default 1), and a warning naming the process settings that are missing
    (``PYTHONHASHSEED`` etc., see ``_determinism``): the tools set them by re-executing
    themselves, a caller of ``main()`` in its own process must set them before starting Python.
    """
    threads = getattr(args, 'threads', None)
    if not getattr(args, 'deterministic', False):
        if threads is not None:
            raise SystemExit(f'--threads {threads} is only used with --deterministic')
        return
    threads = 1 if threads is None else threads
    if threads < 1:
        raise SystemExit(f'--threads must be an integer >= 1, got {threads}')
    import torch
    from _determinism import missing_env
    randomness = dict(cfg.get('randomness') or {})
    if randomness.get('seed') is None:
        randomness['seed'] = 0
    randomness['deterministic'] = True
    cfg.randomness = randomness
    torch.set_num_threads(threads)
    if threads > 1:
        print_log(f'--deterministic with --threads {threads}: runs with more than one intra-op thread were seen '
                  'to differ from run to run on CPU (README, Reproducibility); only --threads 1 was found '
                  'bit-identical', logger='current', level=logging.WARNING)
    missing = missing_env(threads)
    if missing:
        print_log('--deterministic: this process lacks ' + ', '.join(f'{k}={v}' for k, v in missing.items())
                  + ' (set them before starting Python, or run the tool as a script, which does): the run may '
                  'not be bit-identical to another', logger='current', level=logging.WARNING)
    print_log(f'--deterministic: seed {randomness["seed"]}, {threads} intra-op thread(s), '
              'torch.use_deterministic_algorithms(True)', logger='current', level=logging.INFO)


def _is_ptqat_hook(hook) -> bool:
    kind = hook.get('type') if isinstance(hook, dict) else None
    return kind == 'PTQATHook' or (isinstance(kind, str) and kind.endswith('.PTQATHook')) or \
        getattr(kind, '__name__', None) == 'PTQATHook'


def apply_calib_batches(cfg: Config, cfg_options: dict) -> None:
    """Give the config's top-level ``calib_batches`` (the knob the ptqat configs expose) to
    every ``PTQATHook`` in ``custom_hooks``.

    The configs copy it into the hook when the file is read (``calib_batches=_base_.calib_batches``),
    so without this ``--cfg-options calib_batches=N``, or ``calib_batches = N`` in a config
    inheriting one of them, would not reach the hook. Raises ``SystemExit`` when
    ``--cfg-options`` sets ``calib_batches`` for a config without a PTQATHook, or sets a hook's
    ``calib_batches`` while the config has the top-level knob (which would override it).
    """
    hooks = [h for h in (cfg.get('custom_hooks') or []) if _is_ptqat_hook(h)]
    if 'calib_batches' in cfg_options and not hooks:
        raise SystemExit(f'--cfg-options calib_batches={cfg_options["calib_batches"]!r}: this config '
                         'has no PTQATHook in custom_hooks, nothing would use it')
    if 'calib_batches' not in cfg:
        return
    per_hook = [k for k in cfg_options if k.startswith('custom_hooks') and k.endswith('calib_batches')]
    if per_hook:
        raise SystemExit(f'--cfg-options {per_hook[0]}=...: set the config\'s knob instead, '
                         f'calib_batches=N (it is given to every PTQATHook)')
    for hook in hooks:
        if hook.get('calib_batches') != cfg.calib_batches:
            print_log(f'calib_batches={cfg.calib_batches!r} (the config\'s knob) replaces the '
                      f'PTQATHook\'s {hook.get("calib_batches")!r}', logger='current', level=logging.INFO)
            hook['calib_batches'] = cfg.calib_batches


def _init_cpu_process_group(backend: str) -> None:
    """Initialise torch.distributed for a CPU-only torch launched by torchrun.

    mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally, which fails
    on a CPU build; the Runner skips its own initialisation when a process group exists.
    """
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)


def build_runner(cfg: Config):
    """The Runner of ``cfg``; without a PTQATHook (which checks checkpoints itself) a
    ``CheckpointCheckHook`` is registered, so that a quantized checkpoint is not silently
    evaluated as a float one (see ptqat.engine.checkpoint_check)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    from ptqat.engine import CheckpointCheckHook, PTQATHook
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if not any(isinstance(h, (PTQATHook, CheckpointCheckHook)) for h in runner.hooks):
        runner.register_hook(CheckpointCheckHook())
    return runner


@contextmanager
def distributed_session() -> Iterator[None]:
    """End a distributed run cleanly: wrap everything after :func:`load_config`.

    Without it the tools left the process group to the interpreter's exit. Gloo's C++ worker
    threads then still exist while Python is being finalised, and destroying them (or the
    tensors of their last work items) at that point calls ``std::terminate``: rank 1 sometimes
    died with SIGABRT, "terminate called without an active exception", after the run had
    finished (more often on a loaded machine, when that rank reached exit first). Here every
    rank waits for the others at a barrier once the run succeeded, then destroys the process
    group while the interpreter is fully alive. After an error the barrier is skipped (the
    other ranks may never reach it) and the group is still destroyed. No-op without
    torch.distributed.
    """
    ok = False
    try:
        yield
        ok = True
    finally:
        import gc

        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            # The Runner is in reference cycles (its loops and hooks point back at it), so the
            # DDP wrapper and its reducer, which hold gloo work objects, would otherwise be freed
            # only by a later garbage collection, possibly during interpreter finalisation:
            # the same std::terminate (seen once in 2026-11 CI on a loaded machine after the
            # barrier was added). Collect them now, while the group and the interpreter live.
            gc.collect()
            if ok:
                dist.barrier()
            dist.destroy_process_group()
            gc.collect()
