# BEVDet-occ-tiny on the synthetic nuScenes set (CPU): the BEVDet-tiny config (same data, model
# widths, recipe, LiDAR depth loss) with the Occ3D task: a 32x32 BEV grid of 2.5 m over +-40 m
# (one z bin), FlashOcc's channel-to-height head (32 -> 32, MLP to 16 x 18) after a bilinear
# resample to the 200x200 Occ3D grid, camera-masked CE, flips-only BEV augmentation, Occ3DMetric.
#
# Data: as configs/bevdet/bevdet-tiny_synth.py but WITH the Occ3D labels (no --no-occupancy),
# in its own folder so that it does not clash with the detection set (what
# `PTQAT_MODEL=bevdet-occ bash tools/quickstart.sh` makes):
#   python tools/make_synthetic_nuscenes.py data/nuscenes_synth_occ --version v1.0-trainval \
#       --train-scenes 24 --val-scenes 4 --samples-per-scene 10 --cam-sweeps 0 --lidar-sweeps 0
#   python tools/create_data.py nuscenes --root-path data/nuscenes_synth_occ --version v1.0-trainval
# Train / test:
#   python tools/train.py configs/bevdet-occ/bevdet-occ-tiny_synth.py
#   python tools/test.py configs/bevdet-occ/bevdet-occ-tiny_synth.py CKPT       # -> occ/mIoU
# Initialised from the committed BEVDet-tiny detection weights (load_from below) as FlashOcc
# starts from BEVDet's; the detection head's keys are unused, and the depth net is not loaded
# (38 outputs here for the 1..45 m depth range, 46 in BEVDet-tiny's 1..60 m).
# The committed checkpoints/bevdet-occ-tiny_synth_fp16.pth is this config's run (seed 0), made by
#   OMP_NUM_THREADS=1 python tools/train.py configs/bevdet-occ/bevdet-occ-tiny_synth.py \
#       --work-dir work_dirs/bevdet-occ-tiny_synth_8e
#   python tools/publish_checkpoint.py work_dirs/bevdet-occ-tiny_synth_8e/epoch_8.pth \
#       checkpoints/bevdet-occ-tiny_synth_fp16.pth --config configs/bevdet-occ/bevdet-occ-tiny_synth.py
# (img_bev_encoder_neck.conv.1.running_var, 1.1e5, is beyond float16's range and stays float32.)
# Schedule: 8 epochs (480 iterations of batch 4), lr 1e-3 (50-iter warm-up + cosine), the LiDAR
# depth loss kept. Measured 2026-11-30: 17 min 11 s for training and the final val, 2.0 s/iter,
# one thread, on the 2-core CPU shared with two study runs (load ~3).
# Val (40 samples): occ/mIoU 12.40: driveable_surface 83.6, sidewalk 58.2, terrain 68.9, free
# 99.1, the 14 object and other classes 0.0 (one run). Occ CE 0.15 after epoch 1 -> 0.074.
# EXPERIMENT LOG: the first committed file (2 epochs, the same recipe, 18 min at load 8-20,
# 8.5 s/iter) scored 4.37 in float32 and 3.89 from its float16 file, put down to near-ties at
# the time; that file in fact held this running_var as inf (the float16 cast overflowed), the
# likelier cause (not re-measured: its float32 weights are gone). Found when
# tools/publish_checkpoint.py learnt to keep such tensors; tests/test_checkpoint_compat.py now
# checks every committed file is finite. BEVDepth4D-occ-tiny has no checkpoint: no CPU time.
_base_ = ['../bevdet/bevdet-tiny_synth.py']

data_root = 'data/nuscenes_synth_occ/'

occ_grid_config = {
    'x': [-40.0, 40.0, 2.5],
    'y': [-40.0, 40.0, 2.5],
    'z': [-1.0, 5.4, 6.4],
    'depth': [1.0, 45.0, 2.0],
}
model = dict(
    type='BEVDetOCC',
    img_view_transformer=dict(grid_config=occ_grid_config),
    pts_bbox_head=None,
    occ_head=dict(type='BEVOCCHead2D', in_dim=32, out_dim=32, Dz=16, num_classes=18,
                  input_bounds=[occ_grid_config['x'], occ_grid_config['y']],
                  loss_occ=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False,
                                ignore_index=255, loss_weight=1.0)),
    train_cfg=None,
    test_cfg=None)

occ_bda_aug_conf = dict(rot_lim=(0.0, 0.0), scale_lim=(1.0, 1.0), flip_dx_ratio=0.5,
                        flip_dy_ratio=0.5)
_box_only = ('LoadAnnotations3D', 'ObjectRangeFilter', 'ObjectNameFilter')
train_pipeline = [t for t in _base_.train_pipeline if t['type'] not in _box_only]
assert [t['type'] for t in train_pipeline] == [
    'PrepareImageInputs', 'LoadPointsFromFile', 'PointToMultiViewDepth', 'LidarToKeyEgo',
    'BEVAug', 'PackBEVDetInputs']
train_pipeline[2].update(grid_config=occ_grid_config)
train_pipeline[4].update(bda_aug_conf=occ_bda_aug_conf, is_train=True)
train_pipeline[5:5] = [dict(type='LoadOccGTFromFile', data_root=data_root)]
train_pipeline[-1].update(keys=_base_.camera_keys + ['gt_depth', 'voxel_semantics', 'mask_camera'])
test_pipeline = _base_.test_pipeline
test_pipeline[-1:-1] = [dict(type='LoadOccGTFromFile', data_root=data_root)]

train_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Occ3DMetric')
test_evaluator = val_evaluator

# initialisation: the committed BEVDet-tiny detection weights (image encoder, view transformer,
# BEV encoder); the detection head's keys are unused, the task head starts from scratch
load_from = 'checkpoints/bevdet-tiny_synth_fp16.pth'

# schedule (see the header)
max_epochs = 8
lr = 1e-3  # fine-tuning from BEVDet-tiny (4e-3 made the seg model's depth loss diverge)
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
