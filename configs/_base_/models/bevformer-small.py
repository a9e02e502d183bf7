# BEVFormer-small (upstream `bevformer_small.py`), model only: the base model with the
# R101-DCN C5 output only, a 1-level FPN, a 150x150 BEV and 3 encoder layers (SCA on 1 level).
# The rotation centre stays [100, 100] and level_embeds stays (4, 256) as upstream (the
# transformer's num_feature_levels is not overridden there). 59.464 M parameters
# (tests/models/test_bevformer_base_keys.py::test_variant_parameter_counts).
_base_ = ['./bevformer-base.py']

_dim_ = 256
_num_levels_ = 1
bev_h_ = 150
bev_w_ = 150
queue_length = 3

model = dict(
    img_backbone=dict(out_indices=(3, ), with_cp=True),
    img_neck=dict(in_channels=[2048], num_outs=_num_levels_),
    pts_bbox_head=dict(
        bev_h=bev_h_,
        bev_w=bev_w_,
        transformer=dict(
            encoder=dict(
                num_layers=3,
                transformerlayers=dict(attn_cfgs=[
                    dict(type='TemporalSelfAttention', embed_dims=_dim_, num_levels=1),
                    dict(type='SpatialCrossAttention', pc_range=_base_.point_cloud_range,
                         deformable_attention=dict(type='MSDeformableAttention3D',
                                                   embed_dims=_dim_, num_points=8,
                                                   num_levels=_num_levels_),
                         embed_dims=_dim_)
                ]))),
        positional_encoding=dict(row_num_embed=bev_h_, col_num_embed=bev_w_)))
