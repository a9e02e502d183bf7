# BEVFormer-base on nuScenes, quantized: the shared part of the ptq / qat / ptqat / ptqat-large
# configs. W4A8 (26 DCNv2 layers included); the layers of bevformer_8bit_layers.py stay at
# 8-bit weights.
_base_ = ['../../../bevformer/bevformer-base_8xb1-24e_nus.py', '../../_base_/w4a8.py', '../../_base_/lsq_optim.py',
          './bevformer_8bit_layers.py']

model = dict(
    _delete_=True, type='PTQATModel', model=_base_.model,
    quantization=dict(_base_.quantization, overrides=_base_.bevformer_8bit_layers))
load_from = 'ckpts/bevformer_base_1x.pth'  # the FP model (tools/convert_checkpoint.py output)

# fine-tuning: 6 epochs at a tenth of the FP learning rate (a starting point, not tuned)
finetune_epochs = 6
optim_wrapper = dict(optimizer=dict(lr=2e-5), paramwise_cfg=_base_.lsq_paramwise_cfg)  # step sizes: no decay
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=finetune_epochs,
         T_max=finetune_epochs, eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=finetune_epochs, val_interval=finetune_epochs)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
resource_hook = dict(type='ResourceUsageHook')
calib_batches = 32
