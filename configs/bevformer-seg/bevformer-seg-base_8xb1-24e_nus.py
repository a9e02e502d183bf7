# BEVFormer-seg base on nuScenes: the BEVFormer-base recipe (R101-DCN, 900x1600 padded to
# 928x1600, queue of 4, 6 encoder layers, 200x200 BEV at 0.512 m over +-51.2 m, AdamW 2e-4,
# 24 epochs) with BEV map segmentation (BEVFusion's 6 classes, 200x200 at 0.5 m) instead of
# detection: the BEV encoder only (transformer.decoder=None), the 256-channel BEV moved from
# the LiDAR into the key-ego frame (BEVFormerOCC.dense_bev), resampled to the map grid,
# BEVFusion's head (2 x 3x3 conv-BN-ReLU, 1x1), sigmoid focal loss, BEVMapSegMetric.
# Initialised from the BEVFormer-base detection checkpoint. No BEVFormer number on this
# protocol is published (BEVFusion camera-only: 57.09 mIoU); not reproduced (CPU-only).
#
#   bash tools/dist_train.sh configs/bevformer-seg/bevformer-seg-base_8xb1-24e_nus.py 8
#   python tools/test.py configs/bevformer-seg/bevformer-seg-base_8xb1-24e_nus.py CKPT  # -> mIoU
# (test on one process: the temporal BEV cache needs the frames in scene order)
_base_ = ['../bevformer/bevformer-base_8xb1-24e_nus.py']

seg_classes = ['drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'divider']
_bev_bound = [-51.2, 51.2, 0.512]  # pc_range / 200 cells
model = dict(
    type='BEVFormerSeg',
    pts_bbox_head=dict(transformer=dict(decoder=None)),
    map_head=dict(type='BEVMapSegHead', in_channels=256, classes=seg_classes,
                  input_bounds=[_bev_bound, _bev_bound],
                  output_bounds=[[-50.0, 50.0, 0.5], [-50.0, 50.0, 0.5]],
                  num_convs=2, loss_type='focal', gamma=2.0, alpha=-1.0))

_box_only = ('LoadAnnotations3D', 'ObjectRangeFilter', 'ObjectNameFilter', 'Pack3DDetInputs')
_dense_meta_keys = tuple(_base_.meta_keys) + ('lidar2keyego', )
train_pipeline = [t for t in _base_.train_pipeline if t['type'] not in _box_only] + [
    dict(type='LidarToKeyEgo'),
    dict(type='LoadBEVSegmentation', data_root=_base_.data_root, classes=seg_classes),
    dict(type='PackBEVDetInputs', keys=['img', 'gt_masks_bev'], meta_keys=_dense_meta_keys)
]
test_pipeline = [t for t in _base_.test_pipeline if t['type'] not in _box_only] + [
    dict(type='LidarToKeyEgo'),
    dict(type='LoadBEVSegmentation', data_root=_base_.data_root, classes=seg_classes),
    dict(type='PackBEVDetInputs', keys=['img'], meta_keys=_dense_meta_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='BEVMapSegMetric', classes=seg_classes)
test_evaluator = val_evaluator
load_from = 'ckpts/bevformer_base_1x.pth'  # BEVFormer-base detection (tools/convert_checkpoint.py)
