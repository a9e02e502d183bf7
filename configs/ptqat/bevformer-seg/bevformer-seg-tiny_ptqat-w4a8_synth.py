# BEVFormer-seg-tiny W4A8, PTQAT: fine-tune the 50 % of layers with the smallest discrepancy, freeze the rest.
_base_ = ['./_base_/bevformer-seg-tiny_quant_synth.py', '../_base_/ptqat.py']
custom_hooks = [dict(_base_.ptqat_hook, calib_batches=_base_.calib_batches), _base_.resource_hook]
