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


class Renormalise(nn.Module):
    """Map images normalised with one mean/std (the data's, CLIP's for segexp datasets) to another (a timm
    backbone's `pretrained_cfg`): x' = (x·std_in + mean_in − mean_out)/std_out, one affine map per channel."""

    def __init__(self, mean_in, std_in, mean_out, std_out):
        super().__init__()
        mi, si, mo, so = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in (mean_in, std_in, mean_out, std_out))
        self.register_buffer("scale", si / so, persistent=False)
        self.register_buffer("shift", (mi - mo) / so, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift
