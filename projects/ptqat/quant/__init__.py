"""``ptqat.quant``: framework-free core of PTQAT (arXiv 2508.10557).

Plain PyTorch (no OpenMMLab import), usable on any ``nn.Module``::

    quantize_model -> calibrate (PTQ) -> measure_discrepancy -> select_layers
    -> freeze_layers -> train (partial QAT) -> export_onnx

PTQAT fine-tunes only the layers whose quantization discrepancy is *smallest* and freezes
the rest at their PTQ state.
"""
from .calibration import calibrate
from .config import LayerQuantSpec, QuantConfig, quantize_model
from .discrepancy import METRICS, MODES, discrepancy_per_sample, measure_discrepancy
from .freezing import FreezeReport, freeze_layers, frozen_parameter_names
from .layers import (Add, MatMul, QuantAdd, QuantConv1d, QuantConv2d, QuantConv3d, QuantConvTranspose2d, QuantLinear,
                     QuantMatMul, QuantModule, QuantMultiheadAttention, iter_quantizers, quantized_layers)
from .lsq import INIT_METHODS, LSQFakeQuantFunction, LSQQuantizer, quant_range
from .placement import (RESIDUAL_ADD_MODES, PlacementRule, register_placement_rule, registered_placement_rules,
                        unregister_placement_rule)
from .onnx_export import export_mode, export_onnx, pack_int4_weights
from .registry import (FORWARD_METHODS, check_quantizable, get_quant_module_class, register_quant_module,
                       registered_quant_modules, unregister_quant_module)
from .selection import (AUTO_RULES, RATIO_BY, STRATEGIES, auto_threshold, knee_index, layer_param_counts,
                        num_selected, resolve_auto_rule, select_layers)
from .state import load_fp_state_dict, quant_state_keys, trainable_layers

__all__ = [
    'AUTO_RULES', 'Add', 'FORWARD_METHODS', 'FreezeReport', 'INIT_METHODS', 'LSQFakeQuantFunction', 'LSQQuantizer',
    'LayerQuantSpec', 'METRICS', 'MODES', 'MatMul', 'PlacementRule', 'QuantAdd', 'QuantConfig', 'QuantConv1d',
    'QuantConv2d', 'QuantConv3d', 'QuantConvTranspose2d', 'QuantLinear', 'QuantMatMul', 'QuantModule',
    'QuantMultiheadAttention', 'RATIO_BY', 'RESIDUAL_ADD_MODES', 'STRATEGIES', 'auto_threshold', 'calibrate',
    'check_quantizable', 'discrepancy_per_sample', 'export_mode', 'export_onnx', 'freeze_layers',
    'frozen_parameter_names',
    'get_quant_module_class', 'iter_quantizers', 'knee_index', 'layer_param_counts', 'load_fp_state_dict',
    'measure_discrepancy', 'num_selected', 'pack_int4_weights', 'quant_range', 'quant_state_keys', 'quantize_model',
    'quantized_layers', 'register_placement_rule', 'register_quant_module', 'registered_placement_rules',
    'registered_quant_modules', 'resolve_auto_rule', 'select_layers', 'trainable_layers',
    'unregister_placement_rule', 'unregister_quant_module',
]
