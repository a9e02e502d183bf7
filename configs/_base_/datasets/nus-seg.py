# nuScenes BEV map segmentation for BEVDet-style models (camera only): BEVFusion's 6 classes
# rasterised from the map expansion (<data_root>/maps/expansion/*.json) around the key camera's
# ego pose, 200 x 200 at 0.5 m, [y, x]; they follow BEVDet's BEV augmentation.
# Metric: BEVMapSegMetric (IoU at thresholds 0.35..0.65, best per class, mean).
_base_ = ['./nus-bevdet.py']

seg_classes = ['drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'divider']
train_pipeline = [
    dict(type='PrepareImageInputs', is_train=True, data_config=_base_.data_config,
         backend_args=_base_.backend_args),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=_base_.bda_aug_conf, is_train=True),
    dict(type='LoadBEVSegmentation', data_root=_base_.data_root, classes=seg_classes),
    dict(type='PackBEVDetInputs', keys=_base_.camera_keys + ['gt_masks_bev'])
]
test_pipeline = [
    dict(type='PrepareImageInputs', is_train=False, data_config=_base_.data_config,
         backend_args=_base_.backend_args),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=_base_.bda_aug_conf, is_train=False),
    dict(type='LoadBEVSegmentation', data_root=_base_.data_root, classes=seg_classes),
    dict(type='PackBEVDetInputs', keys=_base_.camera_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='BEVMapSegMetric', classes=seg_classes)
test_evaluator = val_evaluator
