# SparseBEV r50_nuimg_704x256 (MCG-NJU/SparseBEV configs/r50_nuimg_704x256.py): ResNet-50
# (C2-C5), FPN 4 levels x 256, 900 queries, 8 frames (key + 7 camera sweeps), 4 points per
# group and frame, 6 decoder stages sharing one layer. 44.570M parameters, upstream keys.
# The backbone starts from the nuImages Cascade Mask R-CNN R50 (load_from in the top config).
custom_imports = dict(imports=['ptqat.plugin'], allow_failed_imports=False)
default_scope = 'mmdet3d'

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.2, 0.2, 8]
embed_dims = 256
num_frames = 8
num_levels = 4
num_points = 4

model = dict(
    type='SparseBEV',
    num_views=6,
    use_grid_mask=True,
    grid_mask=dict(ratio=0.5, prob=0.7),
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,  # mmcv.imread loads BGR
        pad_size_divisor=32),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN2d', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        with_cp=True),
    img_neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=embed_dims,
        num_outs=num_levels),
    pts_bbox_head=dict(
        type='SparseBEVHead',
        num_classes=10,
        in_channels=embed_dims,
        num_query=900,
        query_denoising=True,
        query_denoising_groups=10,
        code_size=10,
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        sync_cls_avg_factor=True,
        transformer=dict(
            type='SparseBEVTransformer',
            embed_dims=embed_dims,
            num_frames=num_frames,
            num_points=num_points,
            num_layers=6,
            num_levels=num_levels,
            num_classes=10,
            code_size=10,
            pc_range=point_cloud_range),
        bbox_coder=dict(
            type='NMSFreeCoder',
            post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            pc_range=point_cloud_range,
            max_num=300,
            voxel_size=voxel_size,
            score_threshold=0.05,
            num_classes=10),
        positional_encoding=dict(
            type='SinePositionalEncoding', num_feats=embed_dims // 2, normalize=True,
            offset=-0.5),
        loss_cls=dict(
            type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=0.25),
        loss_iou=dict(type='mmdet.GIoULoss', loss_weight=0.0)),
    train_cfg=dict(pts=dict(
        assigner=dict(
            type='SparseBEVHungarianAssigner3D',
            cls_cost=dict(type='mmdet.FocalLossCost', weight=2.0),
            reg_cost=dict(type='BBox3DL1Cost', weight=0.25),
            iou_cost=dict(type='mmdet.IoUCost', weight=0.0),
            code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            with_velo=True,
            pc_range=point_cloud_range))))
