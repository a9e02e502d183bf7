# BEVFormer-base (upstream `projects/configs/bevformer/bevformer_base.py`), model only:
# R101-DCNv2 caffe backbone (C3-C5), FPN 4 levels, 200x200 BEV, 6 encoder + 6 decoder layers,
# 900 queries. 69.035 M parameters, 69,140,395 state_dict elements (the authors' published count),
# official key names (tests/models/test_bevformer_base_keys.py).
#
# Shared geometry (reuse these names in dataset / pipeline configs):
#   class_names        head class order = BEVFormer / mmdet3d-0.x order
#   point_cloud_range  BEV range and GT filter
#   bev_h_, bev_w_     BEV grid
#   queue_length       frames per training sample (history + current)
custom_imports = dict(imports=['ptqat.plugin'], allow_failed_imports=False)
default_scope = 'mmdet3d'

class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle',
    'bicycle', 'pedestrian', 'traffic_cone'
]
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.2, 0.2, 8]
_dim_ = 256
_pos_dim_ = _dim_ // 2
_ffn_dim_ = _dim_ * 2
_num_levels_ = 4
bev_h_ = 200
bev_w_ = 200
queue_length = 4  # each sequence contains `queue_length` frames

model = dict(
    type='BEVFormer',
    use_grid_mask=True,
    video_test_mode=True,
    # caffe style: BGR, mean subtraction only (images are loaded BGR)
    data_preprocessor=dict(
        type='BEVFormerDataPreprocessor', mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=101,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN2d', requires_grad=False),
        norm_eval=True,
        style='caffe',
        # upstream initialises the whole detector from ckpts/r101_dcn_fcos3d_pretrain.pth
        # (load_from); no torchvision/open-mmlab download here
        init_cfg=None,
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, False, True, True)),
    img_neck=dict(
        type='mmdet.FPN',
        in_channels=[512, 1024, 2048],
        out_channels=_dim_,
        start_level=0,
        add_extra_convs='on_output',
        num_outs=_num_levels_,
        relu_before_extra_convs=True),
    pts_bbox_head=dict(
        type='BEVFormerHead',
        bev_h=bev_h_,
        bev_w=bev_w_,
        num_query=900,
        num_classes=10,
        in_channels=_dim_,
        sync_cls_avg_factor=True,
        with_box_refine=True,
        as_two_stage=False,
        transformer=dict(
            type='PerceptionTransformer',
            rotate_prev_bev=True,
            use_shift=True,
            use_can_bus=True,
            embed_dims=_dim_,
            num_feature_levels=_num_levels_,
            encoder=dict(
                type='BEVFormerEncoder',
                num_layers=6,
                pc_range=point_cloud_range,
                num_points_in_pillar=4,
                return_intermediate=False,
                # BEVFormer v1.0 (released checkpoints) shifts both reference sets
                shift_both_refs=True,
                transformerlayers=dict(
                    type='BEVFormerLayer',
                    attn_cfgs=[
                        dict(type='TemporalSelfAttention', embed_dims=_dim_, num_levels=1),
                        dict(
                            type='SpatialCrossAttention',
                            pc_range=point_cloud_range,
                            deformable_attention=dict(
                                type='MSDeformableAttention3D', embed_dims=_dim_, num_points=8,
                                num_levels=_num_levels_),
                            embed_dims=_dim_)
                    ],
                    feedforward_channels=_ffn_dim_,
                    ffn_dropout=0.1,
                    operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'))),
            decoder=dict(
                type='DetectionTransformerDecoder',
                num_layers=6,
                return_intermediate=True,
                transformerlayers=dict(
                    type='BaseTransformerLayer',
                    attn_cfgs=[
                        dict(type='MultiheadAttention', embed_dims=_dim_, num_heads=8,
                             dropout=0.1),
                        dict(type='MultiScaleDeformableAttention', embed_dims=_dim_,
                             num_levels=1, num_points=4, num_heads=8)
                    ],
                    ffn_cfgs=dict(type='FFN', embed_dims=_dim_, feedforward_channels=_ffn_dim_,
                                  num_fcs=2, ffn_drop=0.1, act_cfg=dict(type='ReLU', inplace=True)),
                    operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')))),
        bbox_coder=dict(
            type='NMSFreeCoder',
            post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            pc_range=point_cloud_range,
            max_num=300,
            voxel_size=voxel_size,
            num_classes=10),
        positional_encoding=dict(
            type='mmdet.LearnedPositionalEncoding', num_feats=_pos_dim_, row_num_embed=bev_h_,
            col_num_embed=bev_w_),
        loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=2.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=0.25),
        loss_iou=dict(type='mmdet.GIoULoss', loss_weight=0.0)),
    train_cfg=dict(
        pts=dict(
            assigner=dict(
                type='HungarianAssigner3D',
                cls_cost=dict(type='mmdet.FocalLossCost', weight=2.0),
                reg_cost=dict(type='BBox3DL1Cost', weight=0.25),
                iou_cost=dict(type='mmdet.IoUCost', weight=0.0),
                pc_range=point_cloud_range))))
