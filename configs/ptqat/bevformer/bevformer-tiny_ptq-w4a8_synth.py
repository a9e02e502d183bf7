# bevformer-tiny W4A8, PTQ baseline: calibration only, no fine-tuning.
_base_ = ['./_base_/bevformer-tiny_quant_synth.py', '../_base_/ptq.py']
custom_hooks = [dict(_base_.ptqat_hook, calib_batches=_base_.calib_batches), _base_.resource_hook]
