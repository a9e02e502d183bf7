"""A toy detector, data set and metric registered in mmdet3d's registries, for tool tests."""
import torch
import torch.nn as nn
from mmdet3d.registry import DATASETS, METRICS, MODELS
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch.utils.data import Dataset


@MODELS.register_module(force=True)
class ToolsToyModel(BaseModel):
    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(width, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        out = self.head(self.conv(x).relu().mean((2, 3))).squeeze(1)
        if mode == 'tensor':
            return out
        target = torch.stack(data_samples['target'])  # pseudo_collate: a dict of lists
        if mode == 'loss':
            return dict(loss=(out - target).pow(2).mean())
        return [dict(pred=o.detach(), target=t) for o, t in zip(out, target)]


@DATASETS.register_module(force=True)
class ToolsToyDataset(Dataset):
    def __init__(self, n=16, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, 8, 8, generator=g)
        self.y = self.x.mean((1, 2, 3)) * 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=dict(target=self.y[i]))


@METRICS.register_module(force=True)
class ToolsToyMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(float((d['pred'] - d['target']).abs()) for d in data_samples)

    def compute_metrics(self, results):
        return dict(mae=sum(results) / len(results))
