# nuScenes + Occ3D-nuScenes occupancy for BEVDet-style models (camera only).
#
# Needs the Occ3D labels at <data_root>/gts/<scene>/<token>/labels.npz before the infos are
# made (tools/create_data.py then writes `occ_path`). BEV augmentation: flips only (FlashOcc /
# BEVDet-occ: rot_lim (0, 0), scale_lim (1, 1)); LoadOccGTFromFile flips the labels with it.
# Metric: Occ3DMetric (camera-masked mIoU over the 17 semantic classes).
_base_ = ['./nus-bevdet.py']

occ_bda_aug_conf = dict(rot_lim=(0.0, 0.0), scale_lim=(1.0, 1.0), flip_dx_ratio=0.5,
                        flip_dy_ratio=0.5)
occ_keys = ['voxel_semantics', 'mask_camera']
train_pipeline = [
    dict(type='PrepareImageInputs', is_train=True, data_config=_base_.data_config,
         backend_args=_base_.backend_args),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=occ_bda_aug_conf, is_train=True),
    dict(type='LoadOccGTFromFile', data_root=_base_.data_root),
    dict(type='PackBEVDetInputs', keys=_base_.camera_keys + occ_keys)
]
test_pipeline = [
    dict(type='PrepareImageInputs', is_train=False, data_config=_base_.data_config,
         backend_args=_base_.backend_args),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=occ_bda_aug_conf, is_train=False),
    dict(type='LoadOccGTFromFile', data_root=_base_.data_root),  # -> eval_ann_info
    dict(type='PackBEVDetInputs', keys=_base_.camera_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Occ3DMetric')
test_evaluator = val_evaluator
