# SparseBEV r50_nuimg_704x256 on nuScenes, quantized: the shared part of the ptq / qat / ptqat
# / ptqat-large configs (each adds one hook piece from configs/ptqat/_base_/). W4A8; the first
# conv and the output layers stay at 8-bit weights. AdaptiveMixing's two dynamic matmuls are
# QuantMatMul (both operands at a_bits). The six decoder stages share ONE decoder layer, so
# its quantizers are calibrated on, and its discrepancy averaged over, all six calls, and
# the PTQAT selection decides once for all stages (see ptqat.models.sparsebev).
_base_ = [
    '../../../sparsebev/sparsebev-r50_nuimg_704x256_nus.py', '../../_base_/w4a8.py', '../../_base_/lsq_optim.py',
    './sparsebev_8bit_layers.py'
]

model = dict(
    _delete_=True, type='PTQATModel', model=_base_.model,
    quantization=dict(_base_.quantization, overrides=_base_.sparsebev_8bit_layers))
load_from = 'work_dirs/sparsebev-r50_nuimg_704x256_nus/epoch_24.pth'  # the FP model to quantize

# fine-tuning: 4 epochs at a tenth of the FP learning rate (a starting point, not tuned)
finetune_epochs = 4
optim_wrapper = dict(optimizer=dict(lr=2e-5), paramwise_cfg=_base_.lsq_paramwise_cfg)  # step sizes: no decay
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=finetune_epochs,
         T_max=finetune_epochs, eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=finetune_epochs, val_interval=finetune_epochs)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
resource_hook = dict(type='ResourceUsageHook')
calib_batches = 32  # calibration / discrepancy batches
