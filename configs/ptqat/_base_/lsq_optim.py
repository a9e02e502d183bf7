# LSQ step sizes in the optimizer: every `*.step_size` parameter gets its own parameter group
# (mmengine's DefaultOptimWrapperConstructor makes one group per parameter once `paramwise_cfg`
# is set) with NO weight decay (decay would pull the quantization steps towards 0, i.e. change the
# clipping range, whatever the task loss says) and its own learning-rate multiplier.
#
# Why it matters with AdamW (every config here): Adam normalises each parameter's gradient by
# its running RMS, so LSQ's gradient scale g = 1/sqrt(N * Qp) cancels; the update of a step size
# is about lr per iteration, like any weight's. `lr_mult` is the knob that replaces g (1.0: the
# weights' learning rate; lower it if the step sizes move too fast for your schedule).
#
# Used by the per-model quantized bases:
#     _base_ = [<float config>, '../../_base_/w4a8.py', '../../_base_/lsq_optim.py']
#     optim_wrapper = dict(optimizer=dict(lr=...), paramwise_cfg=_base_.lsq_paramwise_cfg)
lsq_step_size_lr_mult = 1.0
# bypass_duplicate: with quantization.share_input_quantizers=True one step size is a parameter of
# several layers (ptqat.quant.placement); it enters the optimizer once (no effect otherwise).
lsq_paramwise_cfg = dict(custom_keys={'.step_size': dict(lr_mult=lsq_step_size_lr_mult, decay_mult=0.0)},
                         bypass_duplicate=True)
