"""Small float models and helpers for the ptqat.quant tests (plain PyTorch)."""
from __future__ import annotations

import torch
import torch.nn as nn

from ptqat.quant import MatMul, iter_quantizers


class ToyCNN(nn.Module):
    """Input ``(N, 3, 8, 8)`` -> logits ``(N, 10)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.proj = nn.Conv1d(6, 4, 1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        x = self.up(x)                            # (N, 6, 16, 16)
        x = self.proj(x.flatten(2))               # (N, 4, 256)
        return self.fc(x.mean(dim=2))


class ToyTransformer(nn.Module):
    """Input ``(N, L, 6)`` -> ``(N, L, 3)``; MHA (batch-first), FFN and a QuantMatMul site."""

    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(6, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.ffn1 = nn.Linear(dim, 2 * dim)
        self.ffn2 = nn.Linear(2 * dim, dim)
        self.mix = MatMul()
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        a, _ = self.attn(h, h, h)
        h = self.norm(h + a)
        h = h + self.ffn2(torch.relu(self.ffn1(h)))
        scores = torch.softmax(self.mix(h, h.transpose(1, 2)) / 4.0, dim=-1)  # (N, L, L)
        return self.head(scores @ h)


def cnn_batches(n: int = 3, batch: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 8, 8, generator=g) for _ in range(n)]


def seq_batches(n: int = 3, batch: int = 3, length: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, length, 6, generator=g) for _ in range(n)]


def set_all_quantizers(model: nn.Module, enabled: bool) -> None:
    for _, q in iter_quantizers(model):
        q.enabled = enabled
