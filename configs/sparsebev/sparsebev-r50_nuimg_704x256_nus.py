# SparseBEV r50_nuimg_704x256 (upstream configs/r50_nuimg_704x256.py; val NDS 55.6 upstream):
# 900 queries, 8 frames, 24 epochs, total batch 8 (1 per GPU x 8), AdamW 2e-4 (x0.1 for the
# backbone and the sampling offsets), grad clip 35, 500-iter warm-up + cosine.
#   bash tools/dist_train.sh configs/sparsebev/sparsebev-r50_nuimg_704x256_nus.py 8
# load_from: the nuImages Cascade Mask R-CNN R50 (mmdet) with its `backbone.` keys renamed to
# `img_backbone.` (upstream's revise_keys); only the backbone matches.
_base_ = [
    '../_base_/models/sparsebev-r50.py', '../_base_/datasets/nus-sparsebev.py',
    '../_base_/default_runtime.py'
]

train_dataloader = dict(batch_size=1, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader

max_epochs = 24
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'img_backbone': dict(lr_mult=0.1),
        'sampling_offset': dict(lr_mult=0.1)
    }),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=1e-3, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
load_from = 'checkpoints/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim_img_backbone.pth'
