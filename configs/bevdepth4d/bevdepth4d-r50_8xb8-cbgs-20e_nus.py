# BEVDepth4D-R50 on nuScenes (upstream dev3.0 `configs/bevdet/bevdet-r50-4d-depth-cbgs.py`):
# one previous key frame (num_adj = 1), LiDAR depth supervision, 256x704 input, CBGS class
# resampling, 20 epochs. 74.901 M parameters. Official result (nuScenes val): mAP 36.18 /
# NDS 48.42. Not reproduced here (CPU-only machine).
#
#   python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval
#   bash tools/dist_train.sh configs/bevdepth4d/bevdepth4d-r50_8xb8-cbgs-20e_nus.py 8
#
# The model base initialises the image backbone from torchvision://resnet50 (internet once,
# or set `model.img_backbone.init_cfg=None` offline).
_base_ = [
    '../_base_/models/bevdepth4d-r50.py', '../_base_/datasets/nus-bevdepth4d.py',
    '../_base_/schedules/bevdepth4d-adamw-20e.py', '../_base_/default_runtime.py'
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(
        _delete_=True,
        type='CBGSDataset',
        dataset=dict(_base_.train_dataloader.dataset,
                     multi_adj_frame_id_cfg=_base_.multi_adj_frame_id_cfg)))
val_dataloader = dict(dataset=dict(multi_adj_frame_id_cfg=_base_.multi_adj_frame_id_cfg))
test_dataloader = val_dataloader
custom_hooks = [_base_.temporal_hook]
