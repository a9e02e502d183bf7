# BEVDepth4D-R50 on nuScenes, quantized: the shared part of the ptq / qat / ptqat /
# ptqat-large configs (each adds one hook piece from configs/ptqat/_base_/). W4A8; the first
# conv and the head's output convs stay at 8 bits. The fine-tuning keeps the depth loss and
# the adjacent frame (no SequentialControlHook: the FP model already fuses it).
_base_ = [
    '../../../bevdepth4d/bevdepth4d-r50_8xb8-cbgs-20e_nus.py', '../../_base_/w4a8.py', '../../_base_/lsq_optim.py',
    '../../bevdet/_base_/bevdet_8bit_layers.py'
]

model = dict(
    _delete_=True, type='PTQATModel', model=_base_.model,
    quantization=dict(_base_.quantization, overrides=_base_.bevdet_8bit_layers))
load_from = 'work_dirs/bevdepth4d-r50_8xb8-cbgs-20e_nus/epoch_20.pth'  # the FP model to quantize

# fine-tuning: 4 epochs (CBGS) at a tenth of the FP learning rate (a starting point, not tuned)
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
