# nuScenes (camera only) for BEVFormer: pipeline, dataloaders, NuScenesMetric.
#
# Info files: `python tools/create_data.py nuscenes --root-path data/nuscenes
#   --version v1.0-trainval` (mmdet3d's v2 infos + scene_token, frame_idx, prev/next and the
# 18-value can_bus; the CAN-bus expansion must be unpacked under data/nuscenes/can_bus).
#
# Pipeline:
#   LoadBEVFormerImages   6 BGR images, scaled by `bevformer_img_scale`, padded to 32; lidar2img
#   PhotoMetricDistortion (train; mmdet3d's, per camera through MultiViewWrapper)
#   LoadAnnotations3D / ObjectRangeFilter / ObjectNameFilter (train)
#   Pack3DDetInputs       img + GT; metainfo adds can_bus, scene_token, frame_idx
# BEVFormerNuScenesDataset orders the samples by scene and frame, completes can_bus from the
# ego pose and, in training, stacks a queue of `bevformer_queue_length` frames.
# Test/val: batch 1, sequential sampler, one process (the model's prev-BEV cache).
# Variable names avoid the model bases' (mmengine forbids a key defined by two bases).
dataset_type = 'BEVFormerNuScenesDataset'
data_root = 'data/nuscenes/'
metainfo = dict(
    classes=[
        'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle',
        'bicycle', 'pedestrian', 'traffic_cone'
    ],
    version='v1.0-trainval')
det_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
input_modality = dict(use_lidar=False, use_camera=True)
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
bevformer_img_scale = 1.0
bevformer_queue_length = 4
meta_keys = ('sample_idx', 'token', 'lidar2img', 'img_shape', 'pad_shape', 'ori_shape',
             'num_views', 'can_bus', 'scene_token', 'frame_idx', 'timestamp', 'box_type_3d',
             'box_mode_3d', 'cam_names')

train_pipeline = [
    dict(type='LoadBEVFormerImages', scale=bevformer_img_scale, size_divisor=32,
         backend_args=backend_args),
    dict(type='MultiViewWrapper', transforms=dict(type='PhotoMetricDistortion3D'),
         collected_keys=[], randomness_keys=[]),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type='ObjectRangeFilter', point_cloud_range=det_range),
    dict(type='ObjectNameFilter', classes=metainfo['classes']),
    dict(type='Pack3DDetInputs', keys=['img', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='LoadBEVFormerImages', scale=bevformer_img_scale, size_divisor=32,
         backend_args=backend_args),
    dict(type='Pack3DDetInputs', keys=['img'], meta_keys=meta_keys)
]

train_dataloader = dict(
    batch_size=1,
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
        queue_length=bevformer_queue_length,
        test_mode=False,
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
    type='EmptySafeNuScenesMetric',
    data_root=data_root,
    ann_file=data_root + 'nuscenes_infos_val.pkl',
    metric='bbox',
    backend_args=backend_args)
test_evaluator = val_evaluator
