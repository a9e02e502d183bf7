"""``BEVFormerDataPreprocessor``: BEVDet's multi-view preprocessor, plus training queues."""
from typing import List

from torch import Tensor

from mmdet3d.registry import MODELS
from ..bevdet.data_preprocessor import BEVDetDataPreprocessor


@MODELS.register_module()
class BEVFormerDataPreprocessor(BEVDetDataPreprocessor):
    """Stack and normalise ``img`` of ``(N, 3, H, W)`` or, with a training queue,
    ``(T, N, 3, H, W)`` per sample into ``inputs['imgs']`` of ``(B, N, 3, H, W)`` or
    ``(B, T, N, 3, H, W)`` (see :class:`BEVDetDataPreprocessor` for the rest)."""

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        imgs = inputs.get('img') if isinstance(inputs, dict) else None
        queue = None
        if isinstance(imgs, (list, tuple)) and imgs and getattr(imgs[0], 'dim', None) and \
                imgs[0].dim() == 5:
            queue = imgs[0].shape[:2]
            if any(tuple(i.shape[:2]) != tuple(queue) for i in imgs):
                raise ValueError('BEVFormerDataPreprocessor: every sample needs the same queue '
                                 f'length and cameras, got {[tuple(i.shape[:2]) for i in imgs]}')
            inputs = dict(inputs, img=[i.flatten(0, 1) for i in imgs])
        elif isinstance(imgs, Tensor) and imgs.dim() == 6:
            queue = imgs.shape[1:3]
            inputs = dict(inputs, img=imgs.flatten(1, 2))
        out = super().forward(dict(data, inputs=inputs), training)
        if queue is not None:
            x = out['inputs']['imgs']
            out['inputs']['imgs'] = x.view(x.shape[0], *queue, *x.shape[2:])
        return out
