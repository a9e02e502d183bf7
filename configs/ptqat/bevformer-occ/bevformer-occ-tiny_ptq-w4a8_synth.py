# BEVFormer-occ-tiny W4A8, PTQ baseline: calibrate only, nothing is trained.
_base_ = ['./_base_/bevformer-occ-tiny_quant_synth.py', '../_base_/ptq.py']
custom_hooks = [dict(_base_.ptqat_hook, calib_batches=_base_.calib_batches), _base_.resource_hook]
