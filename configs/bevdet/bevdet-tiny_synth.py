# BEVDet-tiny (configs/_base_/models/bevdet-tiny.py) trained from scratch on the synthetic
# nuScenes set, on CPU. EXPERIMENTS: (filled in below)
_base_ = [
    '../_base_/models/bevdet-tiny.py', '../_base_/datasets/nus-synth-bevdet.py',
    '../_base_/schedules/bevdet-adamw-24e.py', '../_base_/default_runtime.py'
]

# ------------------------------------------------------------------ data
data_root = 'data/nuscenes_synth/'
metainfo = dict(version='v1.0-mini')

data_config = _base_.data_config
data_config.update(
    input_size=_base_.input_size,  # the tiny model's 128 x 352
    resize=(-0.03, 0.055),  # upstream's (-0.06, 0.11) around 0.44, halved around 0.22
    rot=(-5.4, 5.4),
    flip=True)
train_pipeline = _base_.train_pipeline
train_pipeline[0].update(data_config=data_config, jpeg_draft=True)
test_pipeline = _base_.test_pipeline
test_pipeline[0].update(data_config=data_config, jpeg_draft=True)

train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

# ------------------------------------------------------------------ schedule
lr = 1e-3
max_epochs = 20
optim_wrapper = dict(optimizer=dict(lr=lr, weight_decay=1e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=10)
