# PTQAT (the paper's method): after PTQ calibration, fine-tune only the half of the quantized
# layers with the SMALLEST output discrepancy Dis(X_Q, X); freeze the rest at their PTQ state.
#
# Defines `ptqat_hook` (not `custom_hooks`: mmengine forbids a key defined by two bases, and a
# float config may have its own custom hooks). The per-model config enables it with
#     custom_hooks = [_base_.ptqat_hook]            # or [*_base_.custom_hooks, _base_.ptqat_hook]
# and sets `load_from` to the float checkpoint (see w4a8.py for the whole pattern).
#
# Fine-tuning schedule: the float config's, unless the per-model config shortens it, e.g.
#     train_cfg = dict(max_epochs=6, val_interval=6)
#     optim_wrapper = dict(optimizer=dict(lr=2e-5))   # ~1/10 of the float learning rate
# (schedules cannot live here either: they are keys of the float config).
#
# No `find_unused_parameters` needed under DDP: PTQATHook re-wraps the model after freezing, so
# the new DDP wrapper only tracks the trainable parameters.
#
# Run:  tools/train.py CONFIG            calibrate, rank, select, freeze, fine-tune
#       tools/test.py CONFIG work_dirs/<cfg>/epoch_N.pth
# Files in the work dir: discrepancy.json/.csv/.png (ranking + selection), ptq_calibrated.pth
# (the PTQ state before fine-tuning, i.e. the PTQ baseline of the same calibration).
ptqat_hook = dict(
    type='PTQATHook',
    calib_batches=32,          # batches for calibration and, again, for the discrepancy (total over ranks)
    metric='l2',               # Euclidean distance between quantized and float layer outputs
                               # ('rms': l2 / sqrt(output elements per sample), size-normalised)
    mode='local',              # each layer's own error on float inputs ('cumulative': error up to the layer)
    strategy='small',
    ratio=0.5,                 # or threshold=<theta> (fine-tune the layers with Dis < theta)
                               # ratio_by='params': the ratio is a share of the weights, not of the layers
    train_unquantized=False,   # norms etc. stay frozen: only the selected layers change
    freeze_bn_stats=True,      # frozen norms keep their running statistics (eval mode)
    save_calibrated=True,
)
