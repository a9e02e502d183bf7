# bevformer-base W4A8, full QAT: fine-tune every quantized layer and every other parameter.
_base_ = ['./_base_/bevformer-base_quant_nus.py', '../_base_/qat.py']
custom_hooks = [dict(_base_.ptqat_hook, calib_batches=_base_.calib_batches), _base_.resource_hook]
