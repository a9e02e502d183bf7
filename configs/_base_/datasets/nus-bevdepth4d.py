# nuScenes for BEVDepth4D (BEVDet dev3.0 `bevdet-r50-4d-depth-cbgs`): nus-bevdet.py plus
#   * NuScenesSequentialDataset: each sample carries its previous key frames of the same
#     scene (`adjacent`, nearest first; offsets range(*adj_frame_id_cfg); at a scene start the
#     scene's earliest frame is repeated);
#   * PrepareImageInputs(sequential=True): T = 1 + len(range(*adj_frame_id_cfg)) frames, the
#     adjacent images with the key frame's augmentation; frame-major tensors, img
#     (T*6, 3, H, W), sensor2keyegos into the CURRENT key ego (ego motion included);
#   * LiDAR depth targets (train): LoadPointsFromFile (key frame, no sweeps) ->
#     PointToMultiViewDepth -> gt_depth (6, H, W) metres of the current frame (0 = no point).
#
# Variable names avoid the model bases' (multi_adj_frame_id_cfg, grid_config, ...): mmengine
# forbids a key defined by two bases. Override with `_base_.<name>` in the top config.
_base_ = ['./nus-bevdet.py']

dataset_type = 'NuScenesSequentialDataset'
# previous key frames: range(1, 2, 1) = [1] -> T = 2; the long-term variant uses (1, 9, 1)
adj_frame_id_cfg = (1, 2, 1)
input_modality = dict(use_lidar=True, use_camera=True)  # lidar_path gets data_prefix.pts
# only `depth` ([min, max, step], m) is read by PointToMultiViewDepth (upstream values)
depth_grid_config = dict(
    x=[-51.2, 51.2, 0.8],
    y=[-51.2, 51.2, 0.8],
    z=[-5, 3, 8],
    depth=[1.0, 60.0, 0.5])

train_pipeline = [
    dict(type='PrepareImageInputs', is_train=True, sequential=True,
         data_config=_base_.data_config, backend_args=_base_.backend_args),
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=_base_.backend_args),
    dict(type='PointToMultiViewDepth', grid_config=depth_grid_config, downsample=1),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=False),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=_base_.bda_aug_conf, is_train=True),
    dict(type='ObjectRangeFilter', point_cloud_range=_base_.det_range),
    dict(type='ObjectNameFilter', classes=_base_.metainfo.classes),
    dict(type='PackBEVDetInputs',
         keys=_base_.camera_keys + ['gt_depth', 'gt_bboxes_3d', 'gt_labels_3d'])
]
test_pipeline = [
    dict(type='PrepareImageInputs', is_train=False, sequential=True,
         data_config=_base_.data_config, backend_args=_base_.backend_args),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=_base_.bda_aug_conf, is_train=False),
    dict(type='PackBEVDetInputs', keys=_base_.camera_keys)
]

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        multi_adj_frame_id_cfg=adj_frame_id_cfg,
        modality=input_modality,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        multi_adj_frame_id_cfg=adj_frame_id_cfg,
        modality=input_modality,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
