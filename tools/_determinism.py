"""``--deterministic`` of tools/train.py and tools/test.py: the process-level part.

Bit-identical reruns on CPU need settings that must be in place before the interpreter or torch
starts, so this module imports nothing heavy and runs first:

* ``PYTHONHASHSEED=0``: str/bytes hashing (set and dict-of-set iteration order) is randomised
  per interpreter otherwise; it can only be fixed when the interpreter starts, so the tool
  re-executes itself once with it (only when run as a script);
* a fixed number of intra-op threads (``--threads``, default 1) for OpenMP, MKL and torch:
  parallel reductions split their work by the number of threads, and with 2 threads the
  BEVDet-tiny backward pass was seen to give other bits from run to run (README,
  Reproducibility); one thread was bit-identical;
* ``MKL_DYNAMIC=FALSE``/``OMP_DYNAMIC=FALSE`` (no thread count chosen at run time),
  ``MKL_CBWR=AUTO,STRICT`` (MKL's strict conditional numerical reproducibility: its GEMMs give
  the same bits whatever the buffers' alignment, on the same processor type),
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (needed by
  ``torch.use_deterministic_algorithms`` for cuBLAS on a GPU).

The config part (``randomness.deterministic=True``, ``torch.use_deterministic_algorithms``) is
in ``_runner_utils.apply_deterministic``.
"""
import os
import sys
from typing import Dict, List, Optional

FLAG = '--deterministic'
REEXEC_MARK = 'PTQAT_DETERMINISTIC_REEXEC'


def threads_from_argv(argv: List[str]) -> int:
    """The ``--threads N`` / ``--threads=N`` value of ``argv`` (default 1)."""
    for i, a in enumerate(argv):
        if a == '--threads' and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith('--threads='):
            value = a.split('=', 1)[1]
        else:
            continue
        try:
            n = int(value)
        except ValueError:
            raise SystemExit(f'--threads must be an integer >= 1, got {value!r}') from None
        if n < 1:
            raise SystemExit(f'--threads must be an integer >= 1, got {value!r}')
        return n
    return 1


def deterministic_env(threads: int) -> Dict[str, str]:
    """The environment variables of the deterministic mode."""
    n = str(threads)
    return {'PYTHONHASHSEED': '0', 'OMP_NUM_THREADS': n, 'MKL_NUM_THREADS': n, 'OMP_DYNAMIC': 'FALSE',
            'MKL_DYNAMIC': 'FALSE', 'MKL_CBWR': 'AUTO,STRICT', 'CUBLAS_WORKSPACE_CONFIG': ':4096:8'}


def missing_env(threads: int, environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The deterministic-mode variables that ``environ`` (default ``os.environ``) lacks or sets
    otherwise."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in deterministic_env(threads).items() if environ.get(k) != v}


def reexec_if_needed(argv: List[str]) -> None:
    """Called by the tools' ``__main__`` before anything imports torch: with ``--deterministic``
    and an environment that lacks the mode's variables, re-execute this script once with them."""
    if FLAG not in argv[1:]:
        return
    threads = threads_from_argv(argv[1:])
    missing = missing_env(threads)
    if not missing or os.environ.get(REEXEC_MARK):
        return
    env = dict(os.environ, **deterministic_env(threads), **{REEXEC_MARK: '1'})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + argv, env)
