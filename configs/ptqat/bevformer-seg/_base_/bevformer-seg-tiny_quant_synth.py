# BEVFormer-seg-tiny W4A8, quantized: the shared part of the ptq / qat / ptqat / ptqat-large
# configs (each adds one hook piece from configs/ptqat/_base_/). As the BEVFormer detection
# configs (../../bevformer/_base_/bevformer_8bit_layers.py, without the absent decoder
# branches): the first conv and every sampling_offsets stay at 8-bit weights, plus the head's
# output layer (the final 1x1 (num_convs=2)); the BEV
# embedding and positional encoding stay float (nn.Embedding, not quantized, frozen by PTQAT).
_base_ = ['../../../bevformer-seg/bevformer-seg-tiny_synth.py', '../../_base_/w4a8.py', '../../_base_/lsq_optim.py']

dense_8bit_layers = {
    r'^img_backbone\.conv1$': dict(w_bits=8),
    r'\.sampling_offsets$': dict(w_bits=8),
    r'^map_head\.classifier\.6$': dict(w_bits=8),
}
model = dict(
    _delete_=True, type='PTQATModel', model=_base_.model,
    quantization=dict(_base_.quantization, overrides=dense_8bit_layers))
load_from = 'checkpoints/bevformer-seg-tiny_synth_fp16.pth'  # the committed FP model (see its config)

finetune_epochs = 2
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=_base_.lsq_paramwise_cfg)  # step sizes: no decay
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=finetune_epochs,
         T_max=finetune_epochs, eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=finetune_epochs, val_interval=finetune_epochs)
default_hooks = dict(checkpoint=dict(interval=finetune_epochs, max_keep_ckpts=1))
resource_hook = dict(type='ResourceUsageHook')
calib_batches = 8  # calibration / discrepancy batches
randomness = dict(seed=0)  # the same calibration batches (and selection) on every run
