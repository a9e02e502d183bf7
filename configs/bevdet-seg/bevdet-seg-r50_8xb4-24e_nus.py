# BEVDet-seg R50: BEV map segmentation (BEVFusion's 6 classes, 200x200 at 0.5 m) on the BEVDet-R50
# BEV feature; BEVDet's image and BEV augmentation; AdamW 2e-4 / wd 1e-2, 24 epochs, initialised
# from the BEVDet-R50 detection checkpoint. Reference: BEVFusion camera-only 57.09 mIoU@max
# (Swin-T, different BEV encoder), HENet 58.0 (3 classes); no BEVDet-R50 number is published.
#
#   bash tools/dist_train.sh configs/bevdet-seg/bevdet-seg-r50_8xb4-24e_nus.py 8
#   bash tools/dist_test.sh configs/bevdet-seg/bevdet-seg-r50_8xb4-24e_nus.py CKPT 8  # -> map/mIoU
_base_ = [
    '../_base_/models/bevdet-seg-r50.py', '../_base_/datasets/nus-seg.py',
    '../_base_/schedules/bevdet-adamw-24e.py', '../_base_/default_runtime.py'
]

train_dataloader = dict(batch_size=4, num_workers=4)
optim_wrapper = dict(optimizer=dict(weight_decay=1e-2))
load_from = 'work_dirs/bevdet-r50_8xb8-24e_nus/epoch_24.pth'
