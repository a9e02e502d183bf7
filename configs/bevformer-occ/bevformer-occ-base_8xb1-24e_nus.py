# BEVFormer-occ base on Occ3D-nuScenes: the BEVFormer-base recipe (R101-DCN, 900x1600 padded to
# 928x1600, queue of 4, 6 encoder layers, 200x200 BEV at 0.512 m over +-51.2 m, AdamW 2e-4,
# 24 epochs) with the Occ3D task instead of detection: the BEV encoder only
# (transformer.decoder=None: no object queries, as upstream's BEVFormer-occ), the 256-channel
# BEV moved from the LiDAR into the key-ego frame (BEVFormerOCC.dense_bev), resampled to the
# 200x200 Occ3D grid at 0.4 m, FlashOcc's channel-to-height head (256 -> 256, MLP to 16 x 18),
# camera-masked CE, Occ3DMetric. Upstream's BEVFormer-occ (CVPR 2023 challenge baseline, 23.67
# val mIoU) differs: +-40 m BEV at 0.4 m, 4 encoder layers, a 3D voxel head; here the detection
# model's grid is kept so that its weights initialise the encoder. Not reproduced (CPU-only).
#
#   Occ3D-nuScenes labels under data/nuscenes/gts/, then
#   python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval
#   bash tools/dist_train.sh configs/bevformer-occ/bevformer-occ-base_8xb1-24e_nus.py 8
#   python tools/test.py configs/bevformer-occ/bevformer-occ-base_8xb1-24e_nus.py CKPT  # -> mIoU
# (test on one process: the temporal BEV cache needs the frames in scene order)
_base_ = ['../bevformer/bevformer-base_8xb1-24e_nus.py']

_bev_bound = [-51.2, 51.2, 0.512]  # pc_range / 200 cells
model = dict(
    type='BEVFormerOCC',
    pts_bbox_head=dict(transformer=dict(decoder=None)),
    occ_head=dict(type='BEVOCCHead2D', in_dim=256, out_dim=256, Dz=16, num_classes=18,
                  use_predicter=True, use_mask=True, class_balance=False,
                  input_bounds=[_bev_bound, _bev_bound],
                  loss_occ=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False,
                                ignore_index=255, loss_weight=1.0)))

_box_only = ('LoadAnnotations3D', 'ObjectRangeFilter', 'ObjectNameFilter', 'Pack3DDetInputs')
_dense_meta_keys = tuple(_base_.meta_keys) + ('lidar2keyego', )
train_pipeline = [t for t in _base_.train_pipeline if t['type'] not in _box_only] + [
    dict(type='LidarToKeyEgo'),
    dict(type='LoadOccGTFromFile', data_root=_base_.data_root),
    dict(type='PackBEVDetInputs', keys=['img', 'voxel_semantics', 'mask_camera'],
         meta_keys=_dense_meta_keys)
]
test_pipeline = [t for t in _base_.test_pipeline if t['type'] not in _box_only] + [
    dict(type='LidarToKeyEgo'),
    dict(type='LoadOccGTFromFile', data_root=_base_.data_root),  # -> eval_ann_info
    dict(type='PackBEVDetInputs', keys=['img'], meta_keys=_dense_meta_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Occ3DMetric')
test_evaluator = val_evaluator
load_from = 'ckpts/bevformer_base_1x.pth'  # BEVFormer-base detection (tools/convert_checkpoint.py)
