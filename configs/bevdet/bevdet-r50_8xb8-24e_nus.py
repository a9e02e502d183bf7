# BEVDet-R50 on nuScenes, the official recipe (upstream dev3.0 `configs/bevdet/bevdet-r50.py`):
# 256x704 input, image-view + BEV augmentation, AdamW 2e-4 / wd 1e-7 / clip 5, 200-iter linear
# warm-up, 24 epochs, 8 GPUs x 8 samples. Official result: mAP 28.3 / NDS 35.0 (nuScenes val).
# Not reproduced here (CPU-only machine); upstream also keeps an EMA of the weights
# (MEGVIIEMAHook), which this config does not.
#
# The model base initialises the image backbone from torchvision://resnet50 (needs internet
# once; put the file in the torch hub cache, or set
# `model.img_backbone.init_cfg=None` offline).
#
#   python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval
#   bash tools/dist_train.sh configs/bevdet/bevdet-r50_8xb8-24e_nus.py 8
_base_ = [
    '../_base_/models/bevdet-r50.py', '../_base_/datasets/nus-bevdet.py',
    '../_base_/schedules/bevdet-adamw-24e.py', '../_base_/default_runtime.py'
]

train_dataloader = dict(batch_size=8, num_workers=4)
