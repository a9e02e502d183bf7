# BEVFormer-small on nuScenes (upstream `bevformer_small.py`): images scaled by 0.8, queue 3.
# Official: mAP 37.0 / NDS 47.9. Not reproduced here.
_base_ = [
    '../_base_/models/bevformer-small.py', '../_base_/datasets/nus-bevformer.py',
    '../_base_/schedules/bevformer-adamw-24e.py', '../_base_/default_runtime.py'
]
train_pipeline = _base_.train_pipeline
train_pipeline[0].update(scale=0.8)
test_pipeline = _base_.test_pipeline
test_pipeline[0].update(scale=0.8)
train_dataloader = dict(dataset=dict(queue_length=_base_.queue_length, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
