"""``ptqat.engine``: the MMEngine glue of PTQAT (registered in the mmdet3d registries).

* ``PTQATModel`` (``MODELS``): builds a float detector and quantizes it in place.
* ``PTQATHook`` (``HOOKS``): calibration, discrepancy ranking, layer selection, freezing.
* ``CheckpointCheckHook`` (``HOOKS``): refuses checkpoints that do not fit the model
  (:mod:`.checkpoint_check`; PTQATHook runs the same check).
* ``ResourceUsageHook`` (``HOOKS``): peak memory and time per iteration to resources.json.
* :mod:`.pipeline` / :mod:`.report`: the DDP-aware steps and the JSON/CSV/PNG reports,
  shared with ``tools/analyze_discrepancy.py``.
"""
from .checkpoint_check import (CheckpointCheckHook, CheckpointMismatchError, check_checkpoint,
                               quantization_record)
from . import quant_layers_mmcv  # noqa: F401  (registers the quantized mmcv layers)
from . import placement_rules  # noqa: F401  (Q/DQ placement rules of mmdet / mmdet3d modules)
from .model_builder import PTQATModel, get_quant_config
from .pipeline import (AnalysisResult, PTQATSettings, calibrate_model, effective_threshold, is_calibrated,
                       limit_batches, make_forward_fn, run_analysis, unwrap_model)
from .ptqat_hook import CALIBRATED_CKPT, NO_CHECKPOINT_WARNING, PTQATHook
from .resource_hook import ResourceUsageHook, peak_rss_mb
from .report import build_records, format_ranking, format_summary, plot_discrepancy, write_reports

__all__ = [
    'AnalysisResult', 'CALIBRATED_CKPT', 'CheckpointCheckHook', 'CheckpointMismatchError', 'check_checkpoint',
    'quantization_record', 'NO_CHECKPOINT_WARNING', 'PTQATHook', 'PTQATModel', 'PTQATSettings', 'ResourceUsageHook',
    'build_records', 'calibrate_model', 'effective_threshold', 'format_ranking', 'format_summary',
    'get_quant_config', 'is_calibrated', 'limit_batches', 'make_forward_fn', 'peak_rss_mb', 'plot_discrepancy',
    'run_analysis', 'unwrap_model', 'write_reports',
]
