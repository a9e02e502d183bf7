"""``PTQATHook``: calibration, discrepancy ranking, layer selection and freezing in mmengine.

Config::

    custom_hooks = [dict(type='PTQATHook', calib_batches=32, metric='l2', mode='local',
                         strategy='small', ratio=0.5)]

with a model built by ``type='PTQATModel'`` and ``load_from=<float checkpoint>``.

Life cycle (mmengine builds the optimizer, then loads ``load_from``/resumes, then calls
``before_train``):

* ``before_train``: if no quantizer is initialised (a float checkpoint was loaded):
  calibrate on ``calib_batches`` batches (PTQ), measure ``Dis(X_Q, X)`` per quantized layer
  on the same number of batches, select the layers (``strategy``/``ratio``/``threshold``),
  freeze everything else, log a summary, write ``<out_prefix>.json/.csv/.png`` into the work
  dir and (``save_calibrated``) the PTQ state, with no selection, as ``ptq_calibrated.pth``.
  If the quantizers are initialised (``load_from`` a PTQ/QAT/PTQAT checkpoint, or resuming):
  no recalibration, the step sizes are kept and **the config decides what trains**: its
  ``strategy`` selects now (``none``: nothing, ``all``: every layer, ``small``/``large``/
  ``random``: ranked by the discrepancy measured with the loaded step sizes). The selection
  stored in the checkpoint (``ptqat_trainable`` buffers) is re-applied only when resuming or
  with ``reuse_selection=True``; a stored selection that differs from the config's is logged
  as a warning. If nothing is left to train (``strategy='none'``, i.e. PTQ) the train loop is
  stopped before its first iteration.
* ``after_load_checkpoint``: the loaded checkpoint must fit (:mod:`.checkpoint_check`): every
  float tensor of the model present with its shape, and the quantization settings recorded
  in ``meta['ptqat']`` equal to the model's; otherwise an error names the keys / settings.
* ``before_save_checkpoint``: records the model's quantization settings in ``meta['ptqat']``.
* ``before_train_iter``: with ``freeze_bn_stats`` the norm layers whose parameters are all
  frozen are put back in eval mode (``model.train()`` of the loop resets them), so their
  running statistics stay at the loaded values.
* ``before_val`` / ``before_test``: if the quantizers are still uninitialised (e.g.
  ``tools/test.py`` on a PTQ config with the float checkpoint), calibrate (no selection),
  so the PTQ baseline runs with the ordinary test tool; otherwise nothing.

Optimizer: parameters frozen after the optimizer was built get no gradient, which every
torch optimizer skips (no update, no weight decay, no momentum).

DDP: see :mod:`ptqat.engine.pipeline` (reduced statistics, rank-0 selection broadcast,
rank-0 step sizes); files are written on rank 0. A ``DistributedDataParallel`` wrapper built
without ``find_unused_parameters`` registered every parameter when all of them still
required grad; after freezing it would wait forever for the frozen ones, so the hook
re-wraps the model (``runner.wrap_model`` with the config's ``model_wrapper_cfg``): the new
wrapper only tracks the trainable parameters, no ``find_unused_parameters`` needed.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import mmengine
import torch.nn as nn
from mmengine.dist import get_rank, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import get_state_dict, save_checkpoint, weights_to_cpu
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from mmdet3d.registry import HOOKS
from ptqat.quant import FreezeReport, freeze_layers, frozen_parameter_names, quantized_layers, trainable_layers
from .checkpoint_check import META_KEY, quantization_record, run_checkpoint_check
from .model_builder import get_quant_config
from .pipeline import (AnalysisResult, PTQATSettings, calibrate_model, is_calibrated, limit_batches,
                       run_analysis, uninitialized_quantizers, unwrap_model)
from .report import format_ranking, format_summary, write_reports

__all__ = ['PTQATHook', 'NO_CHECKPOINT_WARNING']

CALIBRATED_CKPT = 'ptq_calibrated.pth'

NO_CHECKPOINT_WARNING = '''
################################################################################
# PTQATHook: NO CHECKPOINT WAS LOADED (`load_from` is not set)!                #
# The quantizers are about to be calibrated on RANDOMLY INITIALISED weights:  #
# the discrepancy ranking, the layer selection and every accuracy number of   #
# this run are meaningless.                                                    #
# Set `load_from = "<float checkpoint>.pth"` in the config, pass              #
# `--cfg-options load_from=<float checkpoint>.pth` to tools/train.py, or give #
# tools/test.py the checkpoint as its second argument.                        #
################################################################################'''


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


@HOOKS.register_module()
class PTQATHook(Hook):
    """PTQ calibration + PTQAT selection/freezing (see the module docstring).

    Args:
        calib_batches: batches for the calibration and, again, for the discrepancy
            measurement (in total over all ranks; each rank takes ``ceil(n / world_size)``
            batches of its own shard).
        metric: ``'l2'`` (the paper's Euclidean distance), ``'rms'`` (l2 / sqrt(output elements
            per sample): comparable across layers of different output sizes), ``'mse'``,
            ``'relative'``, ``'cosine'``.
        mode: ``'local'`` (error each layer introduces on the float input) or ``'cumulative'``.
        strategy: ``'small'`` (PTQAT), ``'large'``, ``'random'`` (ablations), ``'all'`` (QAT),
            ``'none'`` (PTQ: nothing trains, the train loop is stopped after calibration).
        ratio: fraction of the layers to fine-tune (default 0.5 for small/large/random
            when no threshold is given), or of their parameters with ``ratio_by='params'``.
        threshold: small: fine-tune layers with ``Dis < threshold``; large: ``Dis >= threshold``.
            ``'auto'``: θ is picked from the sorted discrepancy curve by ``auto_rule``.
        auto_rule: with ``threshold='auto'``: ``'knee'`` (default without ``param_budget``; the
            knee of the ascending curve by the max-distance-to-chord rule: small fine-tunes the
            layers up to the knee, large the rest), ``'knee-log'`` (the same on log Dis), or
            ``'budget'`` (default with ``param_budget``; the largest θ whose selection fits it).
        param_budget: with ``auto_rule='budget'``: the most trainable parameters of the quantized
            layers, a count (integer >= 1) or a share of them (a number in (0, 1)).
        seed: for ``strategy='random'``.
        calib_dataloader: a dataloader config (or a built DataLoader) for the calibration
            data; default: the config's ``train_dataloader`` (the test/val dataloader is the
            fallback in test/val runs without one).
        train_unquantized: also train the parameters outside every quantized layer (norms,
            embeddings...). Default False: only the selected layers change.
        freeze_bn_stats: keep norm layers whose parameters are all frozen in eval mode
            during training (running statistics fixed). With the defaults this is every
            norm layer: everything except the selected layers stays exactly as loaded.
        forward_mode: ``'tensor'`` (default) or ``'predict'``, the ``mode`` of the model's
            forward during calibration/measurement.
        out_prefix: file name prefix of the reports in the work dir.
        save_calibrated: write the calibrated state (before fine-tuning) to
            ``<work_dir>/ptq_calibrated.pth`` (the PTQ baseline; evaluate it with tools/test.py).
        recalibrate: calibrate and select again even when the loaded checkpoint already
            has initialised quantizers.
        reuse_selection: when ``load_from`` is a checkpoint with a stored selection (a PTQAT/QAT
            checkpoint), fine-tune that selection instead of selecting by this config's
            ``strategy``. Default False: the config decides (a resumed run always continues with
            its stored selection).
        progress: tqdm progress bars (rank 0) during calibration/measurement.
        ratio_by: ``'layers'`` (default: ``ratio`` counts layers) or ``'params'`` (``ratio`` is
            a share of the quantized layers' weights and biases; layers are taken in the
            strategy's order while that brings the share closer to ``ratio``). Needs a ratio.
        keep_float_frozen: the parameters that need no gradient when training starts (what the
            float recipe froze: a ResNet's ``frozen_stages``, ``requires_grad=False`` norms, fixed
            loss weights such as ``code_weights``) stay frozen whatever the selection and
            ``train_unquantized``; a selected layer's step sizes still train. Default True. False
            marks them trainable like the rest of their layer (the behaviour before 2026-12-07;
            mmengine's optimizer still leaves them out when it was built with a ``paramwise_cfg``
            while they needed no gradient).
    """

    priority = 'VERY_HIGH'

    def __init__(self, calib_batches: int = 32, metric: str = 'l2', mode: str = 'local', strategy: str = 'small',
                 ratio: Optional[float] = None, threshold: Optional[Union[float, str]] = None, seed: int = 0,
                 calib_dataloader: Optional[Union[Mapping, DataLoader]] = None, train_unquantized: bool = False,
                 freeze_bn_stats: bool = True, forward_mode: str = 'tensor', out_prefix: str = 'discrepancy',
                 save_calibrated: bool = True, recalibrate: bool = False, progress: bool = False,
                 ratio_by: str = 'layers', reuse_selection: bool = False, auto_rule: Optional[str] = None,
                 param_budget: Optional[float] = None, keep_float_frozen: bool = True) -> None:
        self.settings = PTQATSettings(calib_batches=calib_batches, metric=metric, mode=mode, strategy=strategy,
                                      ratio=ratio, threshold=threshold, seed=seed, forward_mode=forward_mode,
                                      ratio_by=ratio_by, auto_rule=auto_rule, param_budget=param_budget)
        for name, value in (('train_unquantized', train_unquantized), ('freeze_bn_stats', freeze_bn_stats),
                            ('save_calibrated', save_calibrated), ('recalibrate', recalibrate),
                            ('progress', progress), ('reuse_selection', reuse_selection),
                            ('keep_float_frozen', keep_float_frozen)):
            if not _is_bool(value):
                raise ValueError(f'PTQATHook: {name} must be True or False, got {value!r}')
        if not isinstance(out_prefix, str) or not out_prefix or osp.basename(out_prefix) != out_prefix:
            raise ValueError(f'PTQATHook: out_prefix must be a plain file name prefix, got {out_prefix!r}')
        if calib_dataloader is not None and not isinstance(calib_dataloader, (Mapping, DataLoader)):
            raise ValueError(f'PTQATHook: calib_dataloader must be a dataloader config dict or a DataLoader, '
                             f'got {type(calib_dataloader).__name__}')
        self.calib_dataloader = calib_dataloader
        self.train_unquantized = train_unquantized
        self.freeze_bn_stats = freeze_bn_stats
        self.out_prefix = out_prefix
        self.save_calibrated = save_calibrated
        self.recalibrate = recalibrate
        self.progress = progress
        self.reuse_selection = reuse_selection
        self.keep_float_frozen = keep_float_frozen
        self._keep_frozen: List[str] = []
        self._frozen_norms: List[nn.Module] = []
        self.result: Optional[AnalysisResult] = None
        self.report: Optional[FreezeReport] = None
        self.report_paths: Dict[str, str] = {}

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def quantized_model(runner) -> nn.Module:
        model = unwrap_model(runner.model)
        if not quantized_layers(model):
            raise RuntimeError("PTQATHook: the model has no quantized layers; build it with "
                               "model=dict(type='PTQATModel', model=<float model cfg>, quantization=dict(...))")
        return model

    def build_calib_dataloader(self, runner, phase: str = 'train') -> Iterable:
        """The calibration dataloader: ``calib_dataloader``, else the config's
        ``train_dataloader``, else (val/test runs only) the ``<phase>_dataloader``."""
        src = self.calib_dataloader
        what = 'calib_dataloader'
        if src is None:
            src = runner.cfg.get('train_dataloader') or getattr(runner, '_train_dataloader', None)
            what = 'train_dataloader'
        if src is None and phase in ('val', 'test'):
            src = runner.cfg.get(f'{phase}_dataloader') or getattr(runner, f'_{phase}_dataloader', None)
            what = f'{phase}_dataloader'
            runner.logger.warning(f'PTQATHook: no train_dataloader in the config; calibrating on the '
                                  f'{phase} data ({what}); set `calib_dataloader` to calibrate on training data')
        if src is None:
            raise RuntimeError('PTQATHook: no calibration data: set `calib_dataloader` in the hook or '
                               'define `train_dataloader` in the config')
        if isinstance(src, DataLoader):
            return src
        cfg = copy.deepcopy(src.to_dict() if hasattr(src, 'to_dict') else dict(src))
        if cfg.get('num_workers', 0) > 0:
            cfg['persistent_workers'] = False  # a one-off loader: do not keep its workers alive
        runner.logger.info(f'PTQATHook: calibration data from `{what}` '
                           f'({self.settings.calib_batches} batches in total)')
        diff_rank_seed = getattr(runner, '_randomness_cfg', {}).get('diff_rank_seed', False)
        return runner.build_dataloader(cfg, seed=runner.seed, diff_rank_seed=diff_rank_seed)

    def _warn_if_no_checkpoint(self, runner) -> None:
        load_from = getattr(runner, '_load_from', None) or runner.cfg.get('load_from')
        if load_from is None:
            runner.logger.warning(NO_CHECKPOINT_WARNING)

    def _show_progress(self) -> bool:
        return self.progress and get_rank() == 0

    def analyze(self, runner, write: bool = True, calibrate_first: Optional[bool] = None,
                out_dir: Optional[str] = None) -> AnalysisResult:
        """Calibrate (when not calibrated yet, or always with ``recalibrate``), measure,
        select and (rank 0, ``write``) write the reports into ``out_dir`` (default: the work
        dir). Does not freeze anything. Used by ``before_train`` and by
        ``tools/analyze_discrepancy.py``; every rank must call it."""
        model = self.quantized_model(runner)
        if calibrate_first is None:
            calibrate_first = self.recalibrate or not is_calibrated(model)
        if calibrate_first:
            self._warn_if_no_checkpoint(runner)
        loader = self.build_calib_dataloader(runner, 'train')
        n = self.settings.calib_batches
        result = run_analysis(model, lambda: limit_batches(loader, n), self.settings,
                              calibrate_first=calibrate_first, progress=self._show_progress())
        qcfg = get_quant_config(model)
        result.extra.update(quantization=qcfg.to_dict() if qcfg is not None else None,
                            load_from=getattr(runner, '_load_from', None) or runner.cfg.get('load_from'),
                            train_unquantized=self.train_unquantized, freeze_bn_stats=self.freeze_bn_stats)
        if result.measure_batches_used < n:
            runner.logger.warning(f'PTQATHook: asked for {n} calibration batches, the dataloader gave '
                                  f'{result.measure_batches_used}')
        self.result = result
        if write and is_main_process():
            self.report_paths = write_reports(model, result, out_dir or runner.work_dir, self.out_prefix)
            runner.logger.info('PTQATHook: wrote ' + ', '.join(self.report_paths.values()))
            runner.logger.info('PTQATHook: per-layer ranking\n' + format_ranking(model, result))
        return result

    # ------------------------------------------------------------------ training
    def before_train(self, runner) -> None:
        model = self.quantized_model(runner)
        requires_grad_before = {id(p): p.requires_grad for p in model.parameters()}
        # what the float recipe froze (frozen backbone stages, requires_grad=False norms, fixed loss
        # weights) stays frozen whatever the selection, QAT's train_unquantized included
        self._keep_frozen = frozen_parameter_names(model) if self.keep_float_frozen else []
        if self._keep_frozen:
            runner.logger.info(f'PTQATHook: {len(self._keep_frozen)} parameter(s) frozen by the float model stay '
                               f'frozen (e.g. {self._keep_frozen[:3]}; keep_float_frozen=False trains them too)')
        if is_calibrated(model) and not self.recalibrate:
            missing = uninitialized_quantizers(model)
            if missing:
                runner.logger.warning(f'PTQATHook: {len(missing)} quantizer(s) of the loaded checkpoint are '
                                      f'uninitialised (their layers never ran during calibration): {missing[:8]}')
            report = self._select_for_calibrated(runner, model)
            calibrated_now = False
        else:
            result = self.analyze(runner, write=True, calibrate_first=True)
            report = self._freeze(model, result.selected)
            runner.logger.info(f'PTQATHook: calibrated on {result.calib_batches_used} batches, measured the '
                               f'discrepancy on {result.measure_batches_used} batches\n'
                               + format_summary(report, result))
            calibrated_now = True
        self.report = report
        self._frozen_norms = self._norms_to_freeze(model) if self.freeze_bn_stats else []
        self._apply_frozen_norms()
        if self._frozen_norms:
            runner.logger.info(f'PTQATHook: {len(self._frozen_norms)} frozen norm layer(s) stay in eval mode '
                               '(running statistics fixed) during training')
        if calibrated_now and self.save_calibrated:
            self.save_calibrated_checkpoint(runner, model)
        if report.num_params_trainable == 0:
            loop = runner.train_loop
            if hasattr(loop, 'stop_training'):
                loop.stop_training = True
            else:
                runner.logger.warning(f'PTQATHook: {type(loop).__name__} has no `stop_training` flag; set '
                                      'train_cfg to 0 epochs/iterations for PTQ (no parameter is trainable)')
            runner.logger.info('PTQATHook: nothing to fine-tune (PTQ): the train loop stops before its first '
                               'iteration. Evaluate with tools/test.py CONFIG '
                               f'{osp.join(runner.work_dir, CALIBRATED_CKPT)} (or the float checkpoint).')
        else:
            self._rewrap_ddp_if_needed(runner, model, requires_grad_before)

    def _freeze(self, model: nn.Module, selected: Sequence[str]) -> FreezeReport:
        """``freeze_layers`` with this hook's ``train_unquantized`` and the float model's frozen
        parameters (taken at the start of ``before_train``)."""
        return freeze_layers(model, selected, train_unquantized=self.train_unquantized,
                             keep_frozen=self._keep_frozen)

    def _select_for_calibrated(self, runner, model: nn.Module) -> FreezeReport:
        """Selection and freezing when the loaded checkpoint is already calibrated: the stored
        selection when resuming / ``reuse_selection``, else the config's ``strategy``."""
        stored = trainable_layers(model)
        resuming = bool(getattr(runner, '_resume', False))
        if stored and (resuming or self.reuse_selection):
            why = 'resuming' if resuming else 'reuse_selection=True'
            report = self._freeze(model, stored)
            runner.logger.info(f'PTQATHook: the loaded checkpoint has calibrated quantizers: no recalibration; '
                               f'{why}: re-applied its stored selection of {len(stored)} layer(s)\n'
                               + format_summary(report, title='PTQAT summary (resumed)'))
            return report
        strategy = self.settings.strategy
        if strategy == 'none':
            selected, result = [], None
        elif strategy == 'all':
            selected, result = [n for n, _ in quantized_layers(model)], None
        else:
            result = self.analyze(runner, write=True, calibrate_first=False)
            selected = list(result.selected)
        if stored and stored != selected:
            runner.logger.warning(
                f'PTQATHook: the loaded checkpoint stores a selection of {len(stored)} layer(s) (e.g. {stored[:3]}); '
                f"this config's strategy={strategy!r} selects {len(selected)} layer(s) instead, and the config "
                'decides (set reuse_selection=True in the hook to fine-tune the stored selection)')
        report = self._freeze(model, selected)
        runner.logger.info('PTQATHook: the loaded checkpoint has calibrated quantizers: no recalibration; '
                           f'selected by the config (strategy={strategy!r})'
                           + (f', discrepancy measured on {result.measure_batches_used} batches' if result else '')
                           + '\n' + format_summary(report, result))
        return report

    # ------------------------------------------------------------------ checkpoints
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        run_checkpoint_check(runner, checkpoint)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[META_KEY] = quantization_record(unwrap_model(runner.model))

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        self._apply_frozen_norms()

    @staticmethod
    def _norms_to_freeze(model: nn.Module) -> List[nn.Module]:
        return [m for m in model.modules()
                if isinstance(m, _NormBase) and not any(p.requires_grad for p in m.parameters(recurse=False))]

    def _apply_frozen_norms(self) -> None:
        for m in self._frozen_norms:
            if m.training:
                m.eval()

    def save_calibrated_checkpoint(self, runner, model: nn.Module, out_dir: Optional[str] = None) -> Optional[str]:
        """Write the model's current (calibrated) state to ``<out_dir>/ptq_calibrated.pth``
        (rank 0; returns the path there, None elsewhere)."""
        if not is_main_process():
            return None
        path = osp.join(out_dir or runner.work_dir, CALIBRATED_CKPT)
        meta = dict(note='calibrated (PTQ) state saved by PTQATHook before any fine-tuning (no layer selected)',
                    epoch=0, iter=0, mmengine=mmengine.__version__, experiment_name=runner.experiment_name)
        meta[META_KEY] = quantization_record(model)
        state_dict = weights_to_cpu(get_state_dict(model))
        for key in state_dict:  # the calibrated state holds no selection: the loading config decides
            if key == 'ptqat_trainable' or key.endswith('.ptqat_trainable'):
                state_dict[key] = state_dict[key].clone().fill_(False)
        save_checkpoint(dict(meta=meta, state_dict=state_dict), path)
        runner.logger.info(f'PTQATHook: saved the calibrated (PTQ) model to {path}')
        return path

    @staticmethod
    def _rewrap_ddp_if_needed(runner, model: nn.Module, requires_grad_before: Dict[int, bool]) -> None:
        wrapper = runner.model
        if not isinstance(wrapper, DistributedDataParallel):
            if is_model_wrapper(wrapper):
                runner.logger.warning(f'PTQATHook: {type(wrapper).__name__} is not a DistributedDataParallel; make '
                                      'sure it tolerates parameters that were frozen after it was built')
            return
        if getattr(wrapper, 'find_unused_parameters', False):
            return
        newly_frozen = [n for n, p in model.named_parameters()
                        if requires_grad_before.get(id(p), False) and not p.requires_grad]
        if not newly_frozen:
            return
        model_wrapper_cfg = runner.cfg.get('model_wrapper_cfg')
        runner.model = runner.wrap_model(copy.deepcopy(model_wrapper_cfg), model)
        del wrapper
        runner.logger.info(f'PTQATHook: re-wrapped the model in {type(runner.model).__name__} after freezing '
                           f'{len(newly_frozen)} parameter tensors, so that it only synchronises the trainable ones')

    # ------------------------------------------------------------------ evaluation
    def _calibrate_for_eval(self, runner, phase: str) -> None:
        model = unwrap_model(runner.model)
        if not quantized_layers(model):
            runner.logger.warning('PTQATHook: the model has no quantized layers; nothing to calibrate')
            return
        if is_calibrated(model):
            return
        self._warn_if_no_checkpoint(runner)
        runner.logger.info(f'PTQATHook: the quantizers are uninitialised (a float checkpoint): calibrating '
                           f'before {phase} -- this evaluates the PTQ model (no fine-tuning)')
        loader = self.build_calib_dataloader(runner, phase)
        batches = limit_batches(loader, self.settings.calib_batches)
        calibrate_model(model, batches, self.settings.forward_mode, progress=self._show_progress())
        runner.logger.info(f'PTQATHook: calibrated on {batches.n} batches (this rank)')

    def before_val(self, runner) -> None:
        self._calibrate_for_eval(runner, 'val')

    def before_test(self, runner) -> None:
        self._calibrate_for_eval(runner, 'test')

    # used by tools/analyze_discrepancy.py
    def ranking_table(self, runner, max_rows: Optional[int] = None) -> str:
        if self.result is None:
            raise RuntimeError('run analyze() first')
        return format_ranking(self.quantized_model(runner), self.result, max_rows)
