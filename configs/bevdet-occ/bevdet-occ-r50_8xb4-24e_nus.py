# BEVDet-occ R50 (FlashOcc M1) on Occ3D-nuScenes: 256x704 input, flips-only BEV augmentation,
# AdamW 1e-4 / wd 1e-2 / clip 5, 24 epochs, initialised from the BEVDet-R50 detection checkpoint
# (FlashOcc: load_from ckpts/bevdet-r50-cbgs.pth; the grid change is parameter-free for LSS).
# Published: 32.08 mIoU (val). Not reproduced here (CPU-only machine).
#
#   Occ3D-nuScenes labels under data/nuscenes/gts/, then
#   python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval
#   bash tools/dist_train.sh configs/bevdet-occ/bevdet-occ-r50_8xb4-24e_nus.py 8
#   bash tools/dist_test.sh configs/bevdet-occ/bevdet-occ-r50_8xb4-24e_nus.py CKPT 8   # -> occ/mIoU
_base_ = [
    '../_base_/models/bevdet-occ-r50.py', '../_base_/datasets/nus-occ.py',
    '../_base_/schedules/bevdet-adamw-24e.py', '../_base_/default_runtime.py'
]

train_dataloader = dict(batch_size=4, num_workers=4)
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=1e-2))
load_from = 'work_dirs/bevdet-r50_8xb8-24e_nus/epoch_24.pth'
