# BEVDet's official schedule (upstream dev3.0 `bevdet-r50.py`): AdamW lr 2e-4, weight decay
# 1e-7 (the CBGS variants use 1e-2), gradient clipping at 5 (L2 norm), linear warm-up over
# 200 iterations from 1e-3 x lr, step decay at epoch 24 (= the end: constant lr after the
# warm-up), 24 epochs. Tuned for 8 GPUs x 8 samples (base batch 64).
lr = 2e-4
max_epochs = 24

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-07),
    clip_grad=dict(max_norm=5, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=200),
    dict(
        type='MultiStepLR',
        by_epoch=True,
        begin=0,
        end=max_epochs,
        milestones=[24],
        gamma=0.1)
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# 8 GPUs x 8 samples; `--auto-scale-lr` rescales lr for another total batch
auto_scale_lr = dict(enable=False, base_batch_size=64)
