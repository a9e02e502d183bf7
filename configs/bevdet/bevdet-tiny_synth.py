# BEVDet-tiny (configs/_base_/models/bevdet-tiny.py) trained from scratch on the synthetic
# nuScenes set, on CPU: the FP model of the quick start.
#
# Data (deterministic; what tools/quickstart.sh generates into data/nuscenes_synth):
#   python tools/make_synthetic_nuscenes.py data/nuscenes_synth --version v1.0-trainval \
#       --train-scenes 24 --val-scenes 4 --samples-per-scene 10 --cam-sweeps 0 --lidar-sweeps 0 --no-occupancy
#   python tools/create_data.py nuscenes --root-path data/nuscenes_synth --version v1.0-trainval
# Training: python tools/train.py configs/bevdet/bevdet-tiny_synth.py   (240 samples, 60 iters per
# epoch, 30 epochs, 14 min on 2 CPU cores shared with another job). Val NDS / mAP after 5..30
# epochs: 0.044, 0.046, 0.089, 0.151, 0.154, 0.137 / mAP 0.008 at 30 — clearly above an untrained
# model (0), far below the 0.30 aimed for: localisation from scratch on CPU is the limit (see
# README, Results). The committed checkpoints/bevdet-tiny_synth_fp16.pth is this run (float16).
# Image-view and BEV augmentation are off: with this little data and time they slowed learning.
_base_ = [
    '../_base_/models/bevdet-tiny.py', '../_base_/datasets/nus-synth-bevdet.py',
    '../_base_/schedules/bevdet-adamw-24e.py', '../_base_/default_runtime.py'
]

# ------------------------------------------------------------------ data
data_root = 'data/nuscenes_synth/'
metainfo = dict(version='v1.0-trainval')

data_config = _base_.data_config
data_config.update(
    input_size=_base_.input_size,  # the tiny model's 128 x 352
    resize=(0.0, 0.0),  # no image-view augmentation (upstream: (-0.06, 0.11), rot ±5.4°, flip)
    rot=(0.0, 0.0),
    flip=False)
train_pipeline = _base_.train_pipeline
train_pipeline[0].update(data_config=data_config, jpeg_draft=True)
train_pipeline[3].update(is_train=False)  # BEVAug: no BEV-space augmentation either
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

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=10)
