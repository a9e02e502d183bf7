# BEVDet-seg-tiny on the synthetic nuScenes set (CPU): the BEVDet-tiny config (same data, model,
# recipe, LiDAR depth loss) with BEV map segmentation instead of detection: the 32-channel BEV
# feature (32x32 cells of 3.2 m) resampled to BEVFusion's 200x200 grid at 0.5 m, 2 x (3x3
# conv-BN-ReLU, 32 ch), 1x1 to the 6 BEVFusion classes, sigmoid focal loss; flips-only BEV
# augmentation; BEVMapSegMetric. Data: configs/bevdet/bevdet-tiny_synth.py's (the map expansion
# is always written).
#   nice -n 10 python tools/train.py configs/bevdet-seg/bevdet-seg-tiny_synth.py
#   python tools/test.py configs/bevdet-seg/bevdet-seg-tiny_synth.py CKPT      # -> map/mIoU
_base_ = ['../bevdet/bevdet-tiny_synth.py']

seg_classes = ['drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'divider']
model = dict(
    type='BEVDetSeg',
    pts_bbox_head=None,
    map_head=dict(type='BEVMapSegHead', in_channels=32, channels=32, classes=seg_classes,
                  input_bounds=[_base_.grid_config['x'], _base_.grid_config['y']],
                  output_bounds=[[-50.0, 50.0, 0.5], [-50.0, 50.0, 0.5]], num_convs=2),
    train_cfg=None,
    test_cfg=None)

_box_only = ('LoadAnnotations3D', 'ObjectRangeFilter', 'ObjectNameFilter')
train_pipeline = [t for t in _base_.train_pipeline if t['type'] not in _box_only]
assert [t['type'] for t in train_pipeline] == [
    'PrepareImageInputs', 'LoadPointsFromFile', 'PointToMultiViewDepth', 'LidarToKeyEgo',
    'BEVAug', 'PackBEVDetInputs']
train_pipeline[4].update(bda_aug_conf=dict(rot_lim=(0.0, 0.0), scale_lim=(1.0, 1.0),
                                           flip_dx_ratio=0.5, flip_dy_ratio=0.5), is_train=True)
train_pipeline[5:5] = [dict(type='LoadBEVSegmentation', data_root=_base_.data_root,
                            classes=seg_classes)]
train_pipeline[-1].update(keys=_base_.camera_keys + ['gt_depth', 'gt_masks_bev'])
test_pipeline = _base_.test_pipeline
test_pipeline[-1:-1] = [dict(type='LoadBEVSegmentation', data_root=_base_.data_root,
                             classes=seg_classes)]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='BEVMapSegMetric', classes=seg_classes)
test_evaluator = val_evaluator
