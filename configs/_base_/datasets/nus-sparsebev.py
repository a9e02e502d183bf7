# nuScenes (camera only) for SparseBEV (upstream r50_nuimg_704x256 pipeline): 8 frames per
# camera = the key frame + 7 previous camera sweeps (12 Hz; every 4-8th sweep in training,
# every 6th at test, ~0.5 s), each with its own lidar2img (ego motion compensated into the
# current LiDAR frame) and timestamp.
#
# Info files: `python tools/create_data.py nuscenes --root-path data/nuscenes --version
#   v1.0-trainval --max-cam-sweeps 60` (mmdet3d's v2 infos + `cam_sweeps`; upstream reaches
# back up to 60 sweeps; fewer on disk -> the earliest is repeated, as upstream).
#
# Pipeline (projects/ptqat/datasets/transforms/sparsebev_transforms.py):
#   LoadMultiViewImageFromMultiSweeps  T*N images (frame-major), lidar2img, img_timestamp
#   LoadAnnotations3D, ObjectRangeFilter, ObjectNameFilter (mmdet3d)
#   RandomTransformImage               resize 0.38-0.55, bottom crop 256x704, flip (train);
#                                      resize 0.44 + centre crop (test)
#   GlobalRotScaleTransImage           +-0.3925 rad, scale 0.95-1.05 (train)
#   Pack3DDetInputs                    img (T*N, 3, H, W) + metas lidar2img, img_timestamp
# Upstream's GPU photometric distortion (img_color_aug) is not reproduced.
#
# Names avoid the model base's (point_cloud_range, num_frames, ...): mmengine forbids a key
# defined by two bases.
_base_ = ['./nus-bevdet.py']

sweeps_num = 7
ida_aug_conf = dict(
    resize_lim=(0.38, 0.55),
    final_dim=(256, 704),
    bot_pct_lim=(0.0, 0.0),
    rot_lim=(0.0, 0.0),
    H=900,
    W=1600,
    rand_flip=True)
sparsebev_meta_keys = ('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'lidar2img',
                       'img_timestamp', 'num_views', 'box_mode_3d', 'box_type_3d',
                       'sample_idx', 'token', 'ego2global', 'ida_aug', 'bev_aug')

train_pipeline = [
    dict(type='LoadMultiViewImageFromMultiSweeps', sweeps_num=sweeps_num,
         data_root=_base_.data_root),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=False),
    dict(type='ObjectRangeFilter', point_cloud_range=_base_.det_range),
    dict(type='ObjectNameFilter', classes=_base_.metainfo.classes),
    dict(type='RandomTransformImage', ida_aug_conf=ida_aug_conf, training=True),
    dict(type='GlobalRotScaleTransImage', rot_range=[-0.3925, 0.3925],
         scale_ratio_range=[0.95, 1.05]),
    dict(type='Pack3DDetInputs', keys=['img', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys=sparsebev_meta_keys)
]
test_pipeline = [
    dict(type='LoadMultiViewImageFromMultiSweeps', sweeps_num=sweeps_num,
         data_root=_base_.data_root, test_mode=True),
    dict(type='RandomTransformImage', ida_aug_conf=ida_aug_conf, training=False),
    dict(type='Pack3DDetInputs', keys=['img'], meta_keys=sparsebev_meta_keys)
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
