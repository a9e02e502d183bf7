# BEVDet-tiny: the BEVDet architecture shrunk for CPU tests / the quick start.
#
# Same components and key structure as bevdet-r50.py, but: mmdet ResNet-18 with
# base_channels=16 (stage widths 16/32/64/128; C4/C5 = 64/128 channels),
# 128x352 input (camera features 8x22), D = 30 depth bins (1..59 m, 2 m),
# 16 context channels, a 32x32 BEV grid of 3.2 m cells over the same
# +-51.2 m range, BEV encoder 32/64/128 channels, 32-channel head input.
#
# Measured (torch 2.13 CPU, 2 cores): 1.666 M parameters (state_dict 1.670 M:
# img_backbone 0.702 M, img_neck 0.015 M, view transformer 0.002 M,
# BEV backbone 0.776 M, BEV neck 0.149 M, head 0.022 M).
# One `train_step` (preprocessing, forward, loss, backward, grad clip, AdamW)
# with batch 2 x 6 cameras of 128x352 and 5 GT boxes per sample: about 0.14 s
# on an idle machine (first step 0.25 s; 1-3 s while other jobs share the
# two cores).
custom_imports = dict(imports=['ptqat.plugin'], allow_failed_imports=False)
default_scope = 'mmdet3d'

class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.1, 0.1, 0.2]
grid_config = {
    'x': [-51.2, 51.2, 3.2],
    'y': [-51.2, 51.2, 3.2],
    'z': [-5, 3, 8],
    'depth': [1.0, 60.0, 2.0],
}
input_size = (128, 352)
num_cams = 6
numC_Trans = 16
out_size_factor = 32  # 1024 target voxels of 0.1 m / 32 = 32 BEV cells

model = dict(
    type='BEVDet',
    data_preprocessor=dict(
        type='BEVDetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        with_cp=False,
        style='pytorch',
        init_cfg=None),
    img_neck=dict(
        type='CustomFPN',
        in_channels=[64, 128],
        out_channels=32,
        num_outs=1,
        start_level=0,
        out_ids=[0]),
    img_view_transformer=dict(
        type='LSSViewTransformer',
        grid_config=grid_config,
        input_size=input_size,
        in_channels=32,
        out_channels=numC_Trans,
        downsample=16),
    img_bev_encoder_backbone=dict(
        type='CustomResNet',
        numC_input=numC_Trans,
        num_layer=[2, 2, 2],
        num_channels=[numC_Trans * 2, numC_Trans * 4, numC_Trans * 8],
        stride=[2, 2, 2]),
    img_bev_encoder_neck=dict(
        type='FPN_LSS',
        in_channels=numC_Trans * 8 + numC_Trans * 2,
        out_channels=32,
        scale_factor=4,
        input_feature_index=(0, 2),
        extra_upsample=2),
    pts_bbox_head=dict(
        type='BEVDetCenterHead',
        in_channels=32,
        tasks=[dict(num_class=10, class_names=class_names)],
        common_heads=dict(
            reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2)),
        share_conv_channel=16,
        bbox_coder=dict(
            type='CenterPointBBoxCoder',
            pc_range=point_cloud_range[:2],
            post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            max_num=100,
            score_threshold=0.1,
            out_size_factor=out_size_factor,
            voxel_size=voxel_size[:2],
            code_size=9),
        separate_head=dict(
            type='SeparateHead', head_conv=16, init_bias=-2.19,
            final_kernel=3),
        loss_cls=dict(type='mmdet.GaussianFocalLoss', reduction='mean'),
        loss_bbox=dict(type='mmdet.L1Loss', reduction='mean',
                       loss_weight=0.25),
        norm_bbox=True,
        task_specific=True),
    train_cfg=dict(
        pts=dict(
            point_cloud_range=point_cloud_range,
            grid_size=[1024, 1024, 40],
            voxel_size=voxel_size,
            out_size_factor=out_size_factor,
            dense_reg=1,
            gaussian_overlap=0.1,
            max_objs=100,
            min_radius=2,
            code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2])),
    test_cfg=dict(
        pts=dict(
            pc_range=point_cloud_range[:2],
            post_center_limit_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            max_per_img=100,
            max_pool_nms=False,
            min_radius=[4, 12, 10, 1, 0.85, 0.175],
            score_threshold=0.1,
            out_size_factor=out_size_factor,
            voxel_size=voxel_size[:2],
            pre_max_size=200,
            post_max_size=100,
            nms_type=['rotate'],
            nms_thr=[0.2],
            nms_rescale_factor=[[1.0, 0.7, 0.7, 0.4, 0.55, 1.1, 1.0, 1.0,
                                 1.5, 3.5]])))
