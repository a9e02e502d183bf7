# SparseBEV shrunk for CPU tests and the quick start (the synthetic nuScenes set).
#
# Inherits sparsebev-r50.py (same components, same key structure) and changes: mmdet
# ResNet-18 with base_channels=16 (C2-C5 = 16/32/64/128 channels), FPN 4 levels x 32, 32
# embedding channels (4 heads, 4 groups of 8), 100 queries, 4 frames (key + 3 camera sweeps),
# 32 mixed output points, FFN 64. The six weight-shared decoder stages are kept.
_base_ = ['./sparsebev-r50.py']

embed_dims = 32
num_frames = 4

model = dict(
    img_backbone=dict(depth=18, base_channels=16, with_cp=False, frozen_stages=-1,
                      norm_eval=False),
    img_neck=dict(in_channels=[16, 32, 64, 128], out_channels=embed_dims),
    pts_bbox_head=dict(
        in_channels=embed_dims,
        num_query=100,
        query_denoising_groups=5,
        transformer=dict(
            embed_dims=embed_dims,
            num_frames=num_frames,
            layer_cfg=dict(num_heads=4, ffn_channels=64, out_points=32)),
        bbox_coder=dict(max_num=100),
        positional_encoding=dict(num_feats=embed_dims // 2)))
