"""Small building blocks shared by segexp's own models."""
from __future__ import annotations

import torch
from torch import nn


class QuickGELU(nn.Module):
    """x·σ(1.702x), the activation OpenAI CLIP was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of an NCHW map (SAM's decoder norm)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


ACTIVATIONS = {"quick_gelu": QuickGELU, "gelu": nn.GELU}
