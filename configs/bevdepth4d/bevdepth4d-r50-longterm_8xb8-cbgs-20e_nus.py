# BEVDepth4D-R50 long-term (upstream dev3.0 `bevdet-r50-4dlongterm-depth-cbgs.py`): 8 previous
# key frames, the only change (as in configs/_base_/models/bevdepth4d-r50-longterm.py; a test
# checks that both build the same model). 76.514 M parameters. Official result (nuScenes val):
# mAP 39.86 / NDS 51.94. Not reproduced here (CPU-only machine).
_base_ = ['./bevdepth4d-r50_8xb8-cbgs-20e_nus.py']

num_adj = 8
multi_adj_frame_id_cfg = (1, num_adj + 1, 1)
model = dict(num_adj=num_adj,
             img_bev_encoder_backbone=dict(numC_input=_base_.numC_Trans * (num_adj + 1)))
train_dataloader = dict(dataset=dict(dataset=dict(multi_adj_frame_id_cfg=multi_adj_frame_id_cfg)))
val_dataloader = dict(dataset=dict(multi_adj_frame_id_cfg=multi_adj_frame_id_cfg))
test_dataloader = val_dataloader
