# Sequential nuScenes (key frame + adjacent key frames) + Occ3D occupancy for BEVDepth4D-occ:
# nus-bevdepth4d.py's pipeline without the box annotations, flips-only BEV augmentation,
# LiDAR depth targets on the occupancy depth grid (1..45 m at 0.5 m), Occ3DMetric.
_base_ = ['./nus-bevdepth4d.py']

occ_bda_aug_conf = dict(rot_lim=(0.0, 0.0), scale_lim=(1.0, 1.0), flip_dx_ratio=0.5,
                        flip_dy_ratio=0.5)
occ_keys = ['voxel_semantics', 'mask_camera']
occ_depth_grid_config = dict(_base_.depth_grid_config, depth=[1.0, 45.0, 0.5])
_box_only = ('LoadAnnotations3D', 'ObjectRangeFilter', 'ObjectNameFilter')
train_pipeline = [t for t in _base_.train_pipeline if t['type'] not in _box_only]
assert [t['type'] for t in train_pipeline] == [
    'PrepareImageInputs', 'LoadPointsFromFile', 'PointToMultiViewDepth', 'LidarToKeyEgo',
    'BEVAug', 'PackBEVDetInputs']
train_pipeline[2].update(grid_config=occ_depth_grid_config)
train_pipeline[4].update(bda_aug_conf=occ_bda_aug_conf)
train_pipeline[5:5] = [dict(type='LoadOccGTFromFile', data_root=_base_.data_root)]
train_pipeline[-1].update(keys=_base_.camera_keys + ['gt_depth'] + occ_keys)
test_pipeline = _base_.test_pipeline
test_pipeline[-1:-1] = [dict(type='LoadOccGTFromFile', data_root=_base_.data_root)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Occ3DMetric')
test_evaluator = val_evaluator
