# PTQ baseline: calibrate the step sizes on `calib_batches` batches, no fine-tuning.
# Same usage as ptqat.py (custom_hooks = [_base_.ptqat_hook]); no train_cfg change is needed:
#
#   tools/test.py CONFIG <float checkpoint>.pth
#       PTQATHook.before_test finds uninitialised quantizers, calibrates on the training data
#       (the config's train_dataloader) and the test loop evaluates the PTQ model;
#   tools/train.py CONFIG                  (with load_from = the float checkpoint)
#       calibrates, writes discrepancy.json/.csv/.png and ptq_calibrated.pth into the work dir
#       and stops the train loop before its first iteration (nothing is trainable); then
#       tools/test.py CONFIG work_dirs/<cfg>/ptq_calibrated.pth evaluates without recalibrating.
# A ptq_calibrated.pth is also a valid `load_from` of a PTQAT/QAT config: the calibration is
# reused (no recalibration), the layers are ranked and selected by that config's hook.
ptqat_hook = dict(
    type='PTQATHook',
    calib_batches=32,
    metric='l2',
    mode='local',
    strategy='none',
    save_calibrated=True,
)
