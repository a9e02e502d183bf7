# BEVDepth4D's official schedule (upstream dev3.0 `bevdet-r50-4d-depth-cbgs.py`): AdamW lr 2e-4,
# weight decay 1e-2, gradient clipping at 5, linear warm-up over 200 iterations from 1e-3 x lr,
# then constant (step at epoch 20 = the end), 20 epochs on the CBGS-resampled set; the
# temporal fusion switches on after epoch 2 (SequentialControlHook). Tuned for 8 GPUs x 8.
# Upstream also keeps an EMA of the weights (MEGVIIEMAHook); not reproduced here.
_base_ = ['./bevdet-adamw-24e.py']

max_epochs = 20
optim_wrapper = dict(optimizer=dict(weight_decay=1e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[20], gamma=0.1)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
temporal_hook = dict(type='SequentialControlHook', temporal_start_epoch=2)
