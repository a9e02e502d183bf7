# BEVDepth4D-tiny: the BEVDepth4D architecture shrunk for CPU tests / the quick start.
#
# Inherits bevdepth4d-r50.py (same components, key structure, num_adj = 1) and shrinks it like
# bevdet-tiny.py: mmdet ResNet-18 with base_channels=16 (C4/C5 = 64/128 channels), neck 32
# channels, 128x352 input (camera features 8x22), D = 30 depth bins (1..59 m, 2 m), DepthNet
# mid 32 (= its input channels) with ASPP mid 16, 16 context channels, a 32x32 BEV grid of
# 3.2 m cells over the same +-51.2 m range, pre_process_net 16 channels, BEV encoder input
# 2 x 16 = 32 channels and widths 32/64/128, 32-channel head input.
#
# Measured (torch 2.13 CPU): 1.777 M parameters (img_backbone 0.702 M, img_neck 0.015 M,
# view transformer / DepthNet 0.092 M, pre_process_net 0.012 M, BEV backbone 0.785 M,
# BEV neck 0.149 M, head 0.022 M).
# One `train_step` (preprocessing, key + adjacent frame, depth loss, backward, grad clip,
# AdamW) with batch 2 x 2 frames x 6 cameras of 128x352: 0.47-0.55 s with one thread while
# other jobs shared the two cores (BEVDet-tiny measured alongside: 0.23-0.26 s); the
# adjacent frame's image encoder + lift (no_grad) is most of the difference.
# (tests/models/test_bevdepth4d_model.py prints both numbers with `-s`.)
_base_ = ['./bevdepth4d-r50.py']

grid_config = {
    'x': [-51.2, 51.2, 3.2],
    'y': [-51.2, 51.2, 3.2],
    'z': [-5, 3, 8],
    'depth': [1.0, 60.0, 2.0],
}
input_size = (128, 352)
numC_Trans = 16
num_adj = 1
out_size_factor = 32  # 1024 target voxels of 0.1 m / 32 = 32 BEV cells

model = dict(
    num_adj=num_adj,
    img_backbone=dict(depth=18, base_channels=16, with_cp=False, init_cfg=None),
    img_neck=dict(in_channels=[64, 128], out_channels=32),
    img_view_transformer=dict(
        grid_config=grid_config,
        input_size=input_size,
        in_channels=32,
        out_channels=numC_Trans,
        depthnet_cfg=dict(use_dcn=False, aspp_mid_channels=16)),
    pre_process=dict(numC_input=numC_Trans, num_channels=[numC_Trans]),
    img_bev_encoder_backbone=dict(
        numC_input=numC_Trans * (num_adj + 1),
        num_channels=[numC_Trans * 2, numC_Trans * 4, numC_Trans * 8]),
    img_bev_encoder_neck=dict(in_channels=numC_Trans * 8 + numC_Trans * 2, out_channels=32),
    pts_bbox_head=dict(
        in_channels=32,
        share_conv_channel=16,
        bbox_coder=dict(max_num=100, out_size_factor=out_size_factor),
        separate_head=dict(head_conv=16)),
    train_cfg=dict(pts=dict(out_size_factor=out_size_factor, max_objs=100)),
    test_cfg=dict(pts=dict(out_size_factor=out_size_factor, max_per_img=100, pre_max_size=200,
                           post_max_size=100)))
