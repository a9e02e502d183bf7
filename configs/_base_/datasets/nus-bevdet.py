# nuScenes (camera only) for BEVDet-style models: data pipeline, dataloaders, NuScenesMetric.
#
# Info files: `python tools/create_data.py nuscenes --root-path data/nuscenes
#   --version v1.0-trainval` (mmdet3d's v2 infos + the per-camera `ego2global` that
# PrepareImageInputs needs).
#
# Pipeline (see projects/ptqat/datasets/transforms):
#   PrepareImageInputs  6 images -> img (6, 3, H, W) uint8 RGB, sensor2egos, ego2globals,
#                       sensor2keyegos, intrins, post_rots, post_trans (image-view aug in
#                       training; resize + bottom crop at test)
#   LoadAnnotations3D   LiDAR-frame GT boxes (9-dim, velocity) and labels (mmdet3d)
#   LidarToKeyEgo       GT -> key-ego frame (ego pose of cams[0] = CAM_FRONT_LEFT);
#                       stores lidar2keyego for predict()
#   BEVAug              bda: rotation/scale/flips in training, identity at test
#   ObjectRangeFilter / ObjectNameFilter (mmdet3d)
#   PackBEVDetInputs    inputs dict for BEVDetDataPreprocessor + Det3DDataSample
#
# Variable names avoid the model bases' (class_names, point_cloud_range, input_size, ...):
# mmengine forbids a key defined by two bases. Override with `_base_.<name>` in the top
# config (see configs/bevdet/bevdet-tiny_synth.py).
dataset_type = 'NuScenesDataset'
data_root = 'data/nuscenes/'
# BEVDet / mmdet3d-0.x class order (= the head's channel order)
metainfo = dict(
    classes=[
        'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
        'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
    ],
    version='v1.0-trainval')
det_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]  # GT filter (BEV frame) = the BEV grid
input_modality = dict(use_lidar=False, use_camera=True)
cam_names = [
    'CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT', 'CAM_BACK',
    'CAM_BACK_RIGHT'
]
data_prefix = dict(
    pts='samples/LIDAR_TOP',
    sweeps='sweeps/LIDAR_TOP',
    CAM_FRONT='samples/CAM_FRONT',
    CAM_FRONT_LEFT='samples/CAM_FRONT_LEFT',
    CAM_FRONT_RIGHT='samples/CAM_FRONT_RIGHT',
    CAM_BACK='samples/CAM_BACK',
    CAM_BACK_LEFT='samples/CAM_BACK_LEFT',
    CAM_BACK_RIGHT='samples/CAM_BACK_RIGHT')
backend_args = None

# BEVDet's image-view augmentation (upstream data_config): resize is *added* to
# input W / image W (704 / 1600 = 0.44), rotation in degrees, bottom crop (crop_h = 0).
data_config = dict(
    cams=cam_names,
    Ncams=6,
    input_size=(256, 704),
    src_size=(900, 1600),
    resize=(-0.06, 0.11),
    rot=(-5.4, 5.4),
    flip=True,
    crop_h=(0.0, 0.0),
    resize_test=0.00)
# BEV data augmentation
bda_aug_conf = dict(
    rot_lim=(-22.5, 22.5),
    scale_lim=(0.95, 1.05),
    flip_dx_ratio=0.5,
    flip_dy_ratio=0.5)

camera_keys = [
    'img', 'sensor2egos', 'ego2globals', 'sensor2keyegos', 'intrins', 'post_rots',
    'post_trans', 'bda'
]
train_pipeline = [
    dict(type='PrepareImageInputs', is_train=True, data_config=data_config,
         backend_args=backend_args),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=False),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=bda_aug_conf, is_train=True),
    dict(type='ObjectRangeFilter', point_cloud_range=det_range),
    dict(type='ObjectNameFilter', classes=metainfo['classes']),
    dict(type='PackBEVDetInputs', keys=camera_keys + ['gt_bboxes_3d', 'gt_labels_3d'])
]
test_pipeline = [
    dict(type='PrepareImageInputs', is_train=False, data_config=data_config,
         backend_args=backend_args),
    dict(type='LidarToKeyEgo'),
    dict(type='BEVAug', bda_aug_conf=bda_aug_conf, is_train=False),
    dict(type='PackBEVDetInputs', keys=camera_keys)
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline,
        metainfo=metainfo,
        modality=input_modality,
        data_prefix=data_prefix,
        test_mode=False,
        # keep boxes with lidar + radar points (upstream BEVDet's rule)
        use_valid_flag=True,
        box_type_3d='LiDAR',
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_val.pkl',
        pipeline=test_pipeline,
        metainfo=metainfo,
        modality=input_modality,
        data_prefix=data_prefix,
        test_mode=True,
        box_type_3d='LiDAR',
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='EmptySafeNuScenesMetric',  # NuScenesMetric that scores an empty prediction set 0
    data_root=data_root,
    ann_file=data_root + 'nuscenes_infos_val.pkl',
    metric='bbox',
    backend_args=backend_args)
test_evaluator = val_evaluator
