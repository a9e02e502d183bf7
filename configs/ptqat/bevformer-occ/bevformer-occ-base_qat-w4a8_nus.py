# BEVFormer-occ-base W4A8, full QAT: every layer is fine-tuned.
_base_ = ['./_base_/bevformer-occ-base_quant_nus.py', '../_base_/qat.py']
custom_hooks = [dict(_base_.ptqat_hook, calib_batches=_base_.calib_batches), _base_.resource_hook]
