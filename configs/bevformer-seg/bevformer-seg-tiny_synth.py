# BEVFormer-seg-tiny on the synthetic nuScenes set (CPU): the BEVFormer-tiny-synth config (same
# data, images, queue, model widths, recipe) with BEV map segmentation instead of detection: the
# BEV encoder only (transformer.decoder=None: no object queries), its 32-channel BEV (32x32
# cells of 3.2 m, LiDAR frame) moved into the key-ego frame (BEVFormerOCC.dense_bev) and
# resampled to BEVFusion's 200x200 grid at 0.5 m, 2 x (3x3 conv-BN-ReLU, 32 ch), 1x1 to the 6
# BEVFusion classes, sigmoid focal loss, BEVMapSegMetric. No BEV augmentation (BEVFormer has
# none). Data: configs/bevformer/bevformer-tiny_synth.py's (the map expansion is always written).
#   python tools/train.py configs/bevformer-seg/bevformer-seg-tiny_synth.py
#   python tools/test.py configs/bevformer-seg/bevformer-seg-tiny_synth.py CKPT     # -> map/mIoU
# Initialised from the BEVFormer-tiny-synth detection weights (load_from): backbone, neck and BEV
# encoder; the decoder's keys are unused. The committed checkpoints/bevformer-seg-tiny_synth_fp16.pth
# is this config's run (seed 0):
#   OMP_NUM_THREADS=1 python tools/train.py configs/bevformer-seg/bevformer-seg-tiny_synth.py \
#       --work-dir work_dirs/bevformer-seg-tiny_synth_3e
#   python tools/publish_checkpoint.py work_dirs/bevformer-seg-tiny_synth_3e/epoch_3.pth \
#       checkpoints/bevformer-seg-tiny_synth_fp16.pth --config configs/bevformer-seg/bevformer-seg-tiny_synth.py
# 3 epochs (360 iterations of batch 2) at lr 1e-3, measured 2026-11-30: 5 min 44 s for training
# and the final val (0.8-1.1 s/iter, one thread, the 2-core CPU shared with 3 other jobs).
# Val (40 samples): map/mIoU 35.26 (35.25 from the float16 file with tools/test.py): drivable_area 71.1, walkway 59.6, carpark_area 42.6,
# divider 38.3, ped_crossing and stop_line 0.0 (one run; BEVDet-seg-tiny, 5 epochs: 32.39).
_base_ = ['../bevformer/bevformer-tiny_synth.py']

data_root = 'data/nuscenes_synth/'
seg_classes = ['drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'divider']
_bev_bound = [-51.2, 51.2, 3.2]  # pc_range / 32 cells
model = dict(
    type='BEVFormerSeg',
    pts_bbox_head=dict(transformer=dict(decoder=None)),
    map_head=dict(type='BEVMapSegHead', in_channels=32, channels=32, classes=seg_classes,
                  input_bounds=[_bev_bound, _bev_bound],
                  output_bounds=[[-50.0, 50.0, 0.5], [-50.0, 50.0, 0.5]], num_convs=2))

_box_only = ('LoadAnnotations3D', 'ObjectRangeFilter', 'ObjectNameFilter', 'Pack3DDetInputs')
_dense_meta_keys = tuple(_base_.meta_keys) + ('lidar2keyego', )
train_pipeline = [t for t in _base_.train_pipeline if t['type'] not in _box_only] + [
    dict(type='LidarToKeyEgo'),
    dict(type='LoadBEVSegmentation', data_root=data_root, classes=seg_classes),
    dict(type='PackBEVDetInputs', keys=['img', 'gt_masks_bev'], meta_keys=_dense_meta_keys)
]
test_pipeline = [t for t in _base_.test_pipeline if t['type'] not in _box_only] + [
    dict(type='LidarToKeyEgo'),
    dict(type='LoadBEVSegmentation', data_root=data_root, classes=seg_classes),
    dict(type='PackBEVDetInputs', keys=['img'], meta_keys=_dense_meta_keys)
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline,
                                     filter_empty_gt=False))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='BEVMapSegMetric', classes=seg_classes)
test_evaluator = val_evaluator
load_from = 'checkpoints/bevformer-tiny_synth_fp16.pth'

# schedule: fine-tuning from the detection weights as the BEVDet dense tiny models (lr 1e-3),
# 3 epochs (360 iterations of batch 2): what the CPU time allowed, see the header
max_epochs = 3
lr = 1e-3
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
