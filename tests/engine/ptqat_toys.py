"""A tiny detector, data set and metric registered in the mmdet3d registries for the engine
tests (the real BEVDet data pipeline is not needed), plus runner-config helpers.

Importable by the DDP worker script and by configs (``custom_imports=['ptqat_toys']`` with
this folder on ``sys.path``).
"""
from __future__ import annotations

import copy
import glob
import os.path as osp
import uuid
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

import ptqat.plugin  # noqa: F401  (registers PTQATModel / PTQATHook)
from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.registry import DATASETS, METRICS, MODELS

NUM_OUT = 4
#: the quantized layers of the toy detector, in network order
TOY_LAYERS = ['stem.0', 'layer1.0', 'layer1.3', 'layer2.0', 'neck', 'head']


@MODELS.register_module(force=True)
class PTQATToyDetector(Base3DDetector):
    """Conv-BN-ReLU stem, two more conv stages, a linear neck and a linear head (6 quantizable
    layers); regresses ``NUM_OUT`` numbers per image."""

    def __init__(self, width: int = 8, data_preprocessor: Optional[dict] = None, init_cfg=None,
                 frozen_stem: bool = False) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        if frozen_stem:  # as a ResNet's frozen_stages: the float recipe never trains it
            self.stem.requires_grad_(False)
        self.layer1 = nn.Sequential(nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                    nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False),
                                    nn.BatchNorm2d(2 * w), nn.ReLU())
        self.neck = nn.Linear(2 * w, 2 * w)
        self.head = nn.Linear(2 * w, NUM_OUT)

    @staticmethod
    def _stack(x):
        return torch.stack(list(x)) if isinstance(x, (list, tuple)) else x

    def extract_feat(self, inputs):
        x = self._stack(inputs)
        x = self.layer2(self.layer1(self.stem(x)))
        return F.relu(self.neck(x.mean(dim=(2, 3))))

    def _forward(self, inputs, data_samples=None, **kwargs):
        return self.head(self.extract_feat(inputs))

    def loss(self, inputs, data_samples, **kwargs) -> Dict[str, torch.Tensor]:
        return dict(loss_reg=F.mse_loss(self._forward(inputs), self._stack(data_samples)))

    def predict(self, inputs, data_samples, **kwargs) -> List[dict]:
        pred = self._forward(inputs)
        return [dict(pred=p.detach(), target=t) for p, t in zip(pred, data_samples)]


@DATASETS.register_module(force=True)
class PTQATToyDataset(torch.utils.data.Dataset):
    """``num_samples`` random 3x8x8 images; targets are simple statistics of the image."""

    METAINFO = dict(classes=('toy', ))

    def __init__(self, num_samples: int = 32, size: int = 8, seed: int = 0, **kwargs) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, 3, size, size, generator=g)
        self.y = torch.stack([self.x.mean(dim=(1, 2, 3)), self.x.std(dim=(1, 2, 3)),
                              self.x[:, 0].mean(dim=(1, 2)), self.x[:, :, :4].abs().mean(dim=(1, 2, 3))], dim=1)

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.METAINFO)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.x[i], data_samples=self.y[i])


@METRICS.register_module(force=True)
class PTQATToyMetric(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch: Any, data_samples: List[dict]) -> None:
        for d in data_samples:
            self.results.append(float(((d['pred'] - d['target']) ** 2).mean()))

    def compute_metrics(self, results: list) -> dict:
        return dict(mse=sum(results) / max(len(results), 1))


@MODEL_WRAPPERS.register_module(force=True)
class PTQATToyCPUDDP(MMDistributedDataParallel):
    """mmengine's Runner passes ``device_ids=[LOCAL_RANK]``, which CPU DDP refuses."""

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        super().__init__(module=module, device_ids=None, **kwargs)


FP_MODEL = dict(type='PTQATToyDetector', data_preprocessor=dict(type='BaseDataPreprocessor'))
QUANT = dict(w_bits=4, a_bits=8)


def loader(num_samples: int, shuffle: bool, batch_size: int = 4) -> dict:
    return dict(batch_size=batch_size, num_workers=0,
                dataset=dict(type='PTQATToyDataset', num_samples=num_samples),
                sampler=dict(type='DefaultSampler', shuffle=shuffle), collate_fn=dict(type='pseudo_collate'))


def toy_cfg(work_dir: str, load_from: Optional[str] = None, hook: Optional[dict] = None, max_iters: int = 4,
            quantization: Optional[dict] = None, launcher: str = 'none', quantize: bool = True, **extra) -> dict:
    """A complete runner config for the toy detector (PTQAT model + PTQATHook)."""
    model = dict(type='PTQATModel', model=copy.deepcopy(FP_MODEL),
                 quantization=dict(quantization or QUANT)) if quantize else copy.deepcopy(FP_MODEL)
    hooks = [] if hook is None else [dict(dict(type='PTQATHook', calib_batches=2), **hook)]
    cfg = dict(
        default_scope='mmdet3d',
        experiment_name=f'ptqat_toy_{uuid.uuid4().hex[:10]}',
        model=model,
        work_dir=str(work_dir),
        train_dataloader=loader(32, True),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=10**6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        val_dataloader=loader(8, False), val_cfg=dict(), val_evaluator=dict(type='PTQATToyMetric'),
        test_dataloader=loader(8, False), test_cfg=dict(), test_evaluator=dict(type='PTQATToyMetric'),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False)),
        custom_hooks=hooks,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        log_processor=dict(by_epoch=False), log_level='INFO', load_from=load_from, launcher=launcher,
        randomness=dict(seed=0))
    cfg.update(extra)
    return cfg


def save_fp_checkpoint(path: str, seed: int = 0) -> str:
    """A float checkpoint of the toy detector with non-trivial BN statistics."""
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(FP_MODEL))
    with torch.no_grad():  # non-default BN statistics/affines, as after real training
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


def read_log(work_dir: str) -> str:
    """The text of every log file the runner(s) wrote under ``work_dir``."""
    files = sorted(glob.glob(osp.join(str(work_dir), '*', '*.log')))
    return '\n'.join(open(f, encoding='utf-8').read() for f in files)
