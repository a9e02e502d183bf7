# BEVFormer-seg-base W4A8, ablation: fine-tune the 50 % of layers with the LARGEST discrepancy.
_base_ = ['./_base_/bevformer-seg-base_quant_nus.py', '../_base_/ptqat-large.py']
custom_hooks = [dict(_base_.ptqat_hook, calib_batches=_base_.calib_batches), _base_.resource_hook]
