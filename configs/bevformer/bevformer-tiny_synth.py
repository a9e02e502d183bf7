# BEVFormer-tiny-synth (configs/_base_/models/bevformer-tiny-synth.py) trained from scratch on
# the synthetic nuScenes set, on CPU: the FP model of the BEVFormer quick start.
#
# Data: what tools/quickstart.sh generates into data/nuscenes_synth (see
# configs/bevdet/bevdet-tiny_synth.py for the commands; v1.0-trainval, 24 train / 4 val scenes
# x 10 samples). Images scaled by 0.2 (1600x900 -> 320x180, padded to 320x192), queue of 3
# frames (2 history frames without gradient), no image augmentation.
# The committed FP checkpoint checkpoints/bevformer-tiny_synth_fp16.pth (the PTQAT tiny configs'
# load_from) was made on 2026-11-30 with this config (6 epochs x 120 iterations) by
#   OMP_NUM_THREADS=1 python tools/train.py configs/bevformer/bevformer-tiny_synth.py
#   python tools/publish_checkpoint.py work_dirs/bevformer-tiny_synth/epoch_6.pth \
#       checkpoints/bevformer-tiny_synth_fp16.pth --config configs/bevformer/bevformer-tiny_synth.py \
#       --note "BEVFormer-tiny-synth FP, 6 epochs on synthetic nuScenes"
# Measured: one training step (batch 2 x queue 3 x 6 cameras of 192x320, forward + backward +
# AdamW, 1 thread) takes ~1.8 s on the 2 shared cores at load 11; the 6 epochs took 51 min (18:10-19:01 UTC,
# mean 4.3 s / step at load 17-21). 6 epochs, not 12: 12 would not have ended in the time there was
# (the schedule and lr are untuned starting points). Val (40 samples, tools/test.py, the real
# NuScenesMetric): NDS 0.0585, mAP 0.0063 for the float16 checkpoint (0.0583 / 0.0064 for
# epoch_6.pth in float32, the validation at the end of training). A weak model: 6 epochs.
_base_ = [
    '../_base_/models/bevformer-tiny-synth.py', '../_base_/datasets/nus-bevformer.py',
    '../_base_/schedules/bevformer-adamw-24e.py', '../_base_/default_runtime.py'
]

data_root = 'data/nuscenes_synth/'
metainfo = dict(version='v1.0-trainval')
img_scale = 0.2
train_pipeline = _base_.train_pipeline
train_pipeline[0].update(scale=img_scale)
del train_pipeline[1]  # no photometric distortion
test_pipeline = _base_.test_pipeline
test_pipeline[0].update(scale=img_scale)

train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline,
                 queue_length=_base_.queue_length))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

model = dict(use_grid_mask=False)

lr = 2e-3
max_epochs = 6
optim_wrapper = dict(optimizer=dict(lr=lr),  # from scratch: no backbone lr_mult
                     paramwise_cfg=dict(_delete_=True, custom_keys={}),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=2)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs,
                                                                max_keep_ckpts=1))
log_processor = dict(window_size=10)
