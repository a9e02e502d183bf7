# BEVFormer shrunk for CPU tests and the quick start (the synthetic nuScenes set).
#
# Inherits bevformer-tiny.py (same components and key structure) and changes: mmdet ResNet-18
# with base_channels=16 (C5 = 128 channels, stride 32), 1-level FPN of 32 channels, a 32x32 BEV
# (3.2 m cells over +-51.2 m), 32 embedding channels (4 heads), 2 encoder and 2 decoder layers,
# 100 queries, 4 pillar points. Upstream's rotate_center [100, 100] is kept.
_base_ = ['./bevformer-tiny.py']

_dim_ = 32
_ffn_dim_ = 64
bev_h_ = 32
bev_w_ = 32
_heads_ = 4
queue_length = 3

model = dict(
    img_backbone=dict(depth=18, base_channels=16, with_cp=False),
    img_neck=dict(in_channels=[128], out_channels=_dim_),
    pts_bbox_head=dict(
        bev_h=bev_h_,
        bev_w=bev_w_,
        num_query=100,
        in_channels=_dim_,
        transformer=dict(
            embed_dims=_dim_,
            encoder=dict(
                num_layers=2,
                shift_both_refs=False,
                transformerlayers=dict(
                    attn_cfgs=[
                        dict(type='TemporalSelfAttention', embed_dims=_dim_, num_heads=_heads_,
                             num_levels=1),
                        dict(type='SpatialCrossAttention', pc_range=_base_.point_cloud_range,
                             embed_dims=_dim_,
                             deformable_attention=dict(type='MSDeformableAttention3D',
                                                       embed_dims=_dim_, num_heads=_heads_,
                                                       num_points=8, num_levels=1))
                    ],
                    feedforward_channels=_ffn_dim_)),
            decoder=dict(
                num_layers=2,
                transformerlayers=dict(
                    attn_cfgs=[
                        dict(type='MultiheadAttention', embed_dims=_dim_, num_heads=_heads_,
                             dropout=0.1),
                        dict(type='MultiScaleDeformableAttention', embed_dims=_dim_,
                             num_levels=1, num_points=4, num_heads=_heads_)
                    ],
                    ffn_cfgs=dict(embed_dims=_dim_, feedforward_channels=_ffn_dim_)))),
        bbox_coder=dict(max_num=100),
        positional_encoding=dict(num_feats=_dim_ // 2, row_num_embed=bev_h_,
                                 col_num_embed=bev_w_)))
