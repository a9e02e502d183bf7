# BEVFormer-seg-tiny on the synthetic nuScenes set (CPU): the BEVFormer-tiny-synth config (same
# data, images, queue, model widths, recipe) with BEV map segmentation instead of detection: the
# BEV encoder only (transformer.decoder=None: no object queries), its 32-channel BEV (32x32
# cells of 3.2 m, LiDAR frame) moved into the key-ego frame (BEVFormerOCC.dense_bev) and
# resampled to BEVFusion's 200x200 grid at 0.5 m, 2 x (3x3 conv-BN-ReLU, 32 ch), 1x1 to the 6
# BEVFusion classes, sigmoid focal loss, BEVMapSegMetric. No BEV augmentation (BEVFormer has
# none). Data: configs/bevformer/bevformer-tiny_synth.py's (the map expansion is always written).
#   python tools/train.py configs/bevformer-seg/bevformer-seg-tiny_synth.py
#   python tools/test.py configs/bevformer-seg/bevformer-seg-tiny_synth.py CKPT     # -> map/mIoU
# NOT TRAINED YET (no committed checkpoint). Initialised from the BEVFormer-tiny-synth detection
# weights (load_from): backbone, neck and BEV encoder; the decoder's keys are unused.
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
