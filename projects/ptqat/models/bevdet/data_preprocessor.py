"""Data preprocessor of the BEVDet family: multi-view images + cameras."""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from mmdet3d.registry import MODELS

#: camera tensors a sample may carry, with their per-sample shape
CAMERA_KEYS = {
    'sensor2keyegos': '(N, 4, 4)',
    'sensor2egos': '(N, 4, 4)',
    'ego2globals': '(N, 4, 4)',
    'intrins': '(N, 3, 3)',
    'post_rots': '(N, 3, 3)',
    'post_trans': '(N, 3)',
    'bda': '(4, 4)',
}


def _to_tensor(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, (int, float)):
        return torch.tensor(x)
    return x


def _stack(values: Sequence[Any]) -> Any:
    """Stack a list of same-shape arrays/tensors; otherwise keep the list."""
    values = [_to_tensor(v) for v in values]
    if values and all(isinstance(v, Tensor) for v in values) and len(
            {tuple(v.shape) for v in values}) == 1:
        return torch.stack(values)
    return list(values)


@MODELS.register_module()
class BEVDetDataPreprocessor(BaseDataPreprocessor):
    """Stack, normalise and move the multi-view inputs of BEVDet models.

    Accepted ``data['inputs']`` layouts (what ``pseudo_collate`` or
    ``default_collate`` make of the per-sample packed dicts, or a plain list
    of per-sample dicts):

    * dict of lists: ``{'img': [(N, 3, H, W), ...], 'intrins': [(N, 3, 3),
      ...], ...}`` (one entry per sample; tensors or numpy arrays);
    * dict of batched tensors: ``{'img': (B, N, 3, H, W), ...}``;
    * list of per-sample dicts.

    Per-sample keys: ``img`` (or ``imgs``) ``(N, 3, H, W)`` (or
    ``(N, H, W, 3)`` numpy), uint8 or float, RGB unless ``bgr_to_rgb``;
    camera tensors ``sensor2keyegos (N, 4, 4)``, ``ego2globals (N, 4, 4)``,
    ``intrins (N, 3, 3)``, ``post_rots (N, 3, 3)``, ``post_trans (N, 3)``,
    ``bda (4, 4)`` (optionally ``sensor2egos (N, 4, 4)``); any other key is
    stacked when the shapes agree and passed through as a list otherwise.

    Output ``inputs``: ``imgs`` float32 ``(B, N, 3, H, W)`` normalised with
    ``(img - mean) / std``; every camera tensor float32 with a leading batch
    dim; all on the model's device.  ``data_samples`` are moved unchanged.

    Args:
        mean, std (sequence[float]): Per-channel statistics (RGB order),
            mmlab defaults.
        bgr_to_rgb (bool): Flip the channel order before normalising.
        non_blocking (bool): Passed to ``Tensor.to``.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = False,
                 non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        self.register_buffer(
            'mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
            False)
        self.register_buffer(
            'std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
            False)
        self.bgr_to_rgb = bgr_to_rgb

    @staticmethod
    def collate_inputs(inputs: Any) -> Dict[str, Any]:
        """Turn any accepted ``inputs`` layout into a dict of batches."""
        if isinstance(inputs, Mapping):
            out = {}
            for k, v in inputs.items():
                if isinstance(v, (list, tuple)):
                    out[k] = _stack(v)
                else:
                    out[k] = _to_tensor(v)
            return out
        if isinstance(inputs, (list, tuple)):
            keys = inputs[0].keys()
            return {k: _stack([s[k] for s in inputs]) for k in keys}
        raise TypeError(f'unsupported inputs type {type(inputs)}')

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = self.collate_inputs(data['inputs'])
        data_samples: Optional[List] = data.get('data_samples', None)

        imgs = inputs.pop('img', None)
        if imgs is None:
            imgs = inputs.pop('imgs')
        if isinstance(imgs, list):
            raise ValueError('all samples must have the same number of '
                             'cameras and image size; got shapes '
                             f'{[tuple(i.shape) for i in imgs]}')
        if imgs.dim() == 4:  # a single sample without batch dim
            imgs = imgs.unsqueeze(0)
        if imgs.shape[2] != 3 and imgs.shape[-1] == 3:  # (B, N, H, W, 3)
            imgs = imgs.permute(0, 1, 4, 2, 3)
        imgs = imgs.to(self.device, non_blocking=self._non_blocking).float()
        if self.bgr_to_rgb:
            imgs = imgs.flip(2)
        imgs = (imgs - self.mean) / self.std

        batch_inputs = {'imgs': imgs.contiguous()}
        for k, v in inputs.items():
            if isinstance(v, Tensor):
                v = v.to(self.device, non_blocking=self._non_blocking)
                if k in CAMERA_KEYS or v.is_floating_point():
                    v = v.float()
            else:
                v = self.cast_data(v)
            batch_inputs[k] = v
        if data_samples is not None:
            data_samples = self.cast_data(data_samples)
        return {'inputs': batch_inputs, 'data_samples': data_samples}
