# BEVDepth4D-R50 long-term (upstream dev3.0 `bevdet-r50-4dlongterm-depth-cbgs.py`), model only.
# 76.514 M parameters (76.590 M state_dict elements).
#
# The only change to bevdepth4d-r50.py: 8 adjacent key frames (upstream
# multi_adj_frame_id_cfg = (1, 8 + 1, 1)), so the BEV encoder input is 80 * 9 = 720 channels.
_base_ = ['./bevdepth4d-r50.py']

numC_Trans = 80  # as in bevdepth4d-r50.py
num_adj = 8
multi_adj_frame_id_cfg = (1, num_adj + 1, 1)

model = dict(
    num_adj=num_adj,
    img_bev_encoder_backbone=dict(numC_input=numC_Trans * (num_adj + 1)))
