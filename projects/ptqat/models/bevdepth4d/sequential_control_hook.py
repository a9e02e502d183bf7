"""``SequentialControlHook``: switch BEVDepth4D's temporal fusion on late."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS


@HOOKS.register_module()
class SequentialControlHook(Hook):
    """Train without the adjacent frames first (``model.with_prev=False``).

    Upstream BEVDet dev3.0 behaviour: before every training epoch,
    ``with_prev = runner.epoch > temporal_start_epoch`` (``runner.epoch`` is
    0-based there, so ``temporal_start_epoch=2`` trains epochs 0..2 without
    and epoch 3 on with the adjacent BEV maps). For iteration-based loops set
    ``temporal_start_iter`` instead: ``with_prev = runner.iter >=
    temporal_start_iter`` before every training iteration.

    Differences from upstream: the flag is only touched in training
    (upstream's ``before_run`` would also switch it off in ``tools/test.py``
    runs under mmengine), it is re-derived from the epoch on resume, and it
    is set back to True after training so that a final evaluation sees the
    full model.

    Args:
        temporal_start_epoch (int): See above. Defaults to 1.
        temporal_start_iter (int, optional): See above; replaces the epoch
            rule when given.
    """

    priority = 'NORMAL'

    def __init__(self,
                 temporal_start_epoch: int = 1,
                 temporal_start_iter: Optional[int] = None):
        if not isinstance(temporal_start_epoch, int):
            raise ValueError('temporal_start_epoch must be an int, got '
                             f'{temporal_start_epoch!r}')
        if temporal_start_iter is not None and not isinstance(
                temporal_start_iter, int):
            raise ValueError('temporal_start_iter must be an int or None, '
                             f'got {temporal_start_iter!r}')
        self.temporal_start_epoch = temporal_start_epoch
        self.temporal_start_iter = temporal_start_iter

    @staticmethod
    def set_temporal_flag(runner, flag: bool) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if not hasattr(model, 'with_prev'):
            raise AttributeError(
                f'SequentialControlHook needs a model with a `with_prev` '
                f'flag (e.g. BEVDepth4D), got {type(model).__name__}')
        model.with_prev = bool(flag)

    def _epoch_flag(self, runner) -> bool:
        return runner.epoch > self.temporal_start_epoch

    def before_train(self, runner) -> None:
        if self.temporal_start_iter is None:
            self.set_temporal_flag(runner, self._epoch_flag(runner))
        else:
            self.set_temporal_flag(runner,
                                   runner.iter >= self.temporal_start_iter)

    def before_train_epoch(self, runner) -> None:
        if self.temporal_start_iter is None:
            self.set_temporal_flag(runner, self._epoch_flag(runner))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.temporal_start_iter is not None:
            self.set_temporal_flag(runner,
                                   runner.iter >= self.temporal_start_iter)

    def after_train(self, runner) -> None:
        self.set_temporal_flag(runner, True)
