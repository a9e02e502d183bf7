# BEVFormer-tiny (upstream `bevformer_tiny.py`), model only: the small model with an R50
# (pytorch style, frozen BN, ImageNet initialisation upstream, RGB mean/std normalisation)
# and a 50x50 BEV. 33.521 M parameters
# (tests/models/test_bevformer_base_keys.py::test_variant_parameter_counts).
_base_ = ['./bevformer-small.py']

bev_h_ = 50
bev_w_ = 50

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    img_backbone=dict(
        _delete_=True,
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        # upstream: init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')
        init_cfg=None),
    pts_bbox_head=dict(
        bev_h=bev_h_,
        bev_w=bev_w_,
        positional_encoding=dict(row_num_embed=bev_h_, col_num_embed=bev_w_)))
