# BEVDepth4D-tiny (configs/_base_/models/bevdepth4d-tiny.py: one previous key frame, LiDAR
# depth supervision) trained from scratch on the synthetic nuScenes set, on CPU: the FP model
# of the BEVDepth4D quick start. Same data and recipe as configs/bevdet/bevdet-tiny_synth.py
# (see its header for the data commands): trainval 24 train / 4 val scenes x 10 samples, no
# image-view or BEV augmentation, AdamW 4e-3, 30 epochs, batch 4; the temporal fusion is on
# from epoch 3 (SequentialControlHook, as upstream).
#   python tools/train.py configs/bevdepth4d/bevdepth4d-tiny_synth.py
# The committed checkpoints/bevdepth4d-tiny_synth_fp16.pth is this run (with
# `--cfg-options randomness.seed=0 train_cfg.val_interval=5`; 1800 iterations, ~30 min on 2 CPU
# cores shared with another training), slimmed by tools/publish_checkpoint.py. Val NDS / mAP
# after 5..30 epochs: 0.104, 0.133, 0.182, 0.190, 0.190, 0.208 / mAP 0.022 at 30, the best tiny
# model on this data (BEVDet-tiny: 0.137; with the same depth loss 0.149): the previous frame
# gives velocities (mAVE) and the depth loss concentrates the lifted features.
_base_ = [
    '../_base_/models/bevdepth4d-tiny.py', '../_base_/datasets/nus-bevdepth4d.py',
    '../_base_/schedules/bevdepth4d-adamw-20e.py', '../_base_/default_runtime.py'
]

# ------------------------------------------------------------------ data
data_root = 'data/nuscenes_synth/'
metainfo = dict(version='v1.0-trainval')

data_config = _base_.data_config
data_config.update(input_size=_base_.input_size, resize=(0.0, 0.0), rot=(0.0, 0.0), flip=False)
train_pipeline = _base_.train_pipeline
assert [t['type'] for t in train_pipeline[:6]] == [
    'PrepareImageInputs', 'LoadPointsFromFile', 'PointToMultiViewDepth', 'LoadAnnotations3D',
    'LidarToKeyEgo', 'BEVAug']
train_pipeline[0].update(data_config=data_config, jpeg_draft=True)
train_pipeline[2].update(grid_config=_base_.grid_config)
train_pipeline[5].update(is_train=False)  # no BEV-space augmentation
test_pipeline = _base_.test_pipeline
test_pipeline[0].update(data_config=data_config, jpeg_draft=True)

train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline,
                 multi_adj_frame_id_cfg=_base_.multi_adj_frame_id_cfg))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline,
                 multi_adj_frame_id_cfg=_base_.multi_adj_frame_id_cfg))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

# ------------------------------------------------------------------ schedule
lr = 4e-3
max_epochs = 30
optim_wrapper = dict(optimizer=dict(lr=lr, weight_decay=1e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=4)
custom_hooks = [_base_.temporal_hook]

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=10)
