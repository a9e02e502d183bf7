"""Build a detector and one test sample from a config (shared by the export / ONNX tools)."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
from torch import nn

__all__ = ['build_detector', 'build_test_dataset', 'preprocess_samples']


def build_detector(cfg, checkpoint: str) -> nn.Module:
    """The config's model (quantized if the config says so) with ``checkpoint`` loaded, eval mode.

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist.
    """
    import os.path as osp

    import ptqat.checkpoint_compat  # noqa: F401  (mmengine checkpoints under torch >= 2.6)
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} not found')
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.float().eval()


def build_test_dataset(cfg):
    """The config's test dataset (``test_dataloader.dataset``)."""
    from mmdet3d.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    return DATASETS.build(cfg.test_dataloader.dataset)


def preprocess_samples(detector: nn.Module, samples: List[Dict[str, Any]]) -> Tuple[Dict[str, torch.Tensor], list]:
    """Collate dataset items and run the detector's data preprocessor: ``(inputs, data_samples)``."""
    from mmengine.dataset import pseudo_collate
    data = detector.data_preprocessor(pseudo_collate(samples), False)
    return data['inputs'], data['data_samples']
