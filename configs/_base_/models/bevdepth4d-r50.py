# BEVDepth4D-R50 (upstream dev3.0 `configs/bevdet/bevdet-r50-4d-depth-cbgs.py`), model only.
# 74.901 M parameters (74.977 M state_dict elements); official key names.
#
# Inherits bevdet-r50.py and changes (bev_models.md section 3.1):
#   img_neck 512 channels; LSSViewTransformerBEVDepth with the camera-aware DepthNet
#   (D = 118 bins of 0.5 m, 80 context channels, ASPP mid 96, depth loss weight 3.0);
#   pre_process_net (one CustomResNet stage 80 -> 80, stride 1) on every frame's BEV map;
#   num_adj = 1 previous key frame, concatenated with the key frame (BEV encoder input
#   80 * (num_adj + 1) = 160 channels); head loss weights 6.0 (heatmap) / 1.5 (L1) and
#   code_weights [1] * 10.
#
# Inputs (BEVDepth4D docstring): frame-major `imgs (B, (num_adj + 1) * 6, 3, H, W)` and camera
# tensors; `gt_depth (B, 6, H, W)` of the key frame for the depth loss in training.
# Shared names for the data configs: `num_adj`, `multi_adj_frame_id_cfg` (upstream's
# adjacent-frame ids: range(1, num_adj + 1)).
#
# NOTE: inheriting configs must override `model.num_adj` AND
# `model.img_bev_encoder_backbone.numC_input` (config variables are not re-evaluated),
# see bevdepth4d-r50-longterm.py.
_base_ = ['./bevdet-r50.py']

grid_config = {
    'x': [-51.2, 51.2, 0.8],
    'y': [-51.2, 51.2, 0.8],
    'z': [-5, 3, 8],
    'depth': [1.0, 60.0, 0.5],
}
numC_Trans = 80
num_adj = 1
multi_adj_frame_id_cfg = (1, num_adj + 1, 1)

model = dict(
    type='BEVDepth4D',
    num_adj=num_adj,
    num_cams={{_base_.num_cams}},
    align_after_view_transformation=False,
    img_neck=dict(out_channels=512),
    img_view_transformer=dict(
        type='LSSViewTransformerBEVDepth',
        grid_config=grid_config,
        in_channels=512,
        out_channels=numC_Trans,
        loss_depth_weight=3.0,
        depthnet_cfg=dict(use_dcn=False, aspp_mid_channels=96)),
    pre_process=dict(
        type='CustomResNet',
        numC_input=numC_Trans,
        num_layer=[2],
        num_channels=[numC_Trans],
        stride=[1],
        backbone_output_ids=[0]),
    img_bev_encoder_backbone=dict(
        numC_input=numC_Trans * (num_adj + 1),
        num_channels=[numC_Trans * 2, numC_Trans * 4, numC_Trans * 8]),
    img_bev_encoder_neck=dict(in_channels=numC_Trans * 8 + numC_Trans * 2, out_channels=256),
    pts_bbox_head=dict(
        loss_cls=dict(type='mmdet.GaussianFocalLoss', reduction='mean', loss_weight=6.0),
        loss_bbox=dict(type='mmdet.L1Loss', reduction='mean', loss_weight=1.5)),
    train_cfg=dict(pts=dict(code_weights=[1.0] * 10)))
