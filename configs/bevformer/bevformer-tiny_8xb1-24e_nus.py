# BEVFormer-tiny on nuScenes (upstream `bevformer_tiny.py`): R50, images scaled by 0.5, queue 3.
# Official: mAP 25.2 / NDS 35.4. Not reproduced here. Upstream initialises the R50 from
# torchvision://resnet50 (set model.img_backbone.init_cfg to that when online).
_base_ = [
    '../_base_/models/bevformer-tiny.py', '../_base_/datasets/nus-bevformer.py',
    '../_base_/schedules/bevformer-adamw-24e.py', '../_base_/default_runtime.py'
]
train_pipeline = _base_.train_pipeline
train_pipeline[0].update(scale=0.5)
test_pipeline = _base_.test_pipeline
test_pipeline[0].update(scale=0.5)
train_dataloader = dict(dataset=dict(queue_length=_base_.queue_length, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
