# BEVDet-tiny: the BEVDet architecture shrunk for CPU tests / the quick start.
#
# Inherits bevdet-r50.py (same components and key structure) and changes: mmdet ResNet-18 with
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
_base_ = ['./bevdet-r50.py']

grid_config = {
    'x': [-51.2, 51.2, 3.2],
    'y': [-51.2, 51.2, 3.2],
    'z': [-5, 3, 8],
    'depth': [1.0, 60.0, 2.0],
}
input_size = (128, 352)
numC_Trans = 16
out_size_factor = 32  # 1024 target voxels of 0.1 m / 32 = 32 BEV cells

model = dict(
    img_backbone=dict(depth=18, base_channels=16, with_cp=False, init_cfg=None),
    img_neck=dict(in_channels=[64, 128], out_channels=32),
    img_view_transformer=dict(grid_config=grid_config, input_size=input_size, in_channels=32,
                              out_channels=numC_Trans),
    img_bev_encoder_backbone=dict(
        numC_input=numC_Trans, num_channels=[numC_Trans * 2, numC_Trans * 4, numC_Trans * 8]),
    img_bev_encoder_neck=dict(in_channels=numC_Trans * 8 + numC_Trans * 2, out_channels=32),
    pts_bbox_head=dict(
        in_channels=32,
        share_conv_channel=16,
        bbox_coder=dict(max_num=100, out_size_factor=out_size_factor),
        separate_head=dict(head_conv=16)),
    train_cfg=dict(pts=dict(out_size_factor=out_size_factor, max_objs=100)),
    test_cfg=dict(pts=dict(out_size_factor=out_size_factor, max_per_img=100, pre_max_size=200,
                           post_max_size=100)))
