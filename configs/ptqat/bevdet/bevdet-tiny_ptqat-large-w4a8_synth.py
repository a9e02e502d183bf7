# BEVDet-tiny W4A8, ablation: fine-tune the 50 % of layers with the LARGEST discrepancy.
_base_ = ['./_base_/bevdet-tiny_quant_synth.py', '../_base_/ptqat-large.py']
custom_hooks = [_base_.ptqat_hook, _base_.resource_hook]
