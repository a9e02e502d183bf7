# SparseBEV-tiny on synthetic nuScenes, quantized: the shared part of the ptq / qat / ptqat /
# ptqat-large configs (see sparsebev-r50_quant_nus.py for what is quantized and how the
# weight-shared decoder layer is handled).
_base_ = [
    '../../../sparsebev/sparsebev-tiny_synth.py', '../../_base_/w4a8.py', '../../_base_/lsq_optim.py',
    './sparsebev_8bit_layers.py'
]

model = dict(
    _delete_=True, type='PTQATModel', model=_base_.model,
    quantization=dict(_base_.quantization, overrides=_base_.sparsebev_8bit_layers))
load_from = 'checkpoints/sparsebev-tiny_synth_fp16.pth'  # the committed FP model (see its config)

# fine-tuning: 2 epochs at a tenth of the FP learning rate
finetune_epochs = 2
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=_base_.lsq_paramwise_cfg)  # step sizes: no decay
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=finetune_epochs,
         T_max=finetune_epochs, eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=finetune_epochs, val_interval=finetune_epochs)
default_hooks = dict(checkpoint=dict(interval=finetune_epochs, max_keep_ckpts=1))
resource_hook = dict(type='ResourceUsageHook')
calib_batches = 8  # calibration / discrepancy batches (small: CPU)
randomness = dict(seed=0)  # the same calibration batches (and selection) on every run
