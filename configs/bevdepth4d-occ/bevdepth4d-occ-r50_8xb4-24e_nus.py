# BEVDepth4D-occ R50 on Occ3D-nuScenes: the BEVDepth4D-R50 recipe (1 adjacent frame, temporal
# fusion from epoch 2, depth loss weight 0.05 as BEVDet-occ) with the Occ3D grid and FlashOcc's
# channel-to-height head; AdamW 1e-4 / wd 1e-2, 24 epochs, initialised from the BEVDepth4D
# detection checkpoint (as BEVDet-occ starts from its detection model).
#
#   bash tools/dist_train.sh configs/bevdepth4d-occ/bevdepth4d-occ-r50_8xb4-24e_nus.py 8
_base_ = [
    '../_base_/models/bevdepth4d-occ-r50.py', '../_base_/datasets/nus-bevdepth4d-occ.py',
    '../_base_/schedules/bevdepth4d-adamw-20e.py', '../_base_/default_runtime.py'
]

max_epochs = 24
train_dataloader = dict(batch_size=4, num_workers=4)
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=1e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[max_epochs],
         gamma=0.1)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
custom_hooks = [_base_.temporal_hook]
load_from = 'work_dirs/bevdepth4d-r50_8xb8-cbgs-20e_nus/epoch_20.pth'
