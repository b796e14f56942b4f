"""Dense features with a per-block strategy in the chosen blocks (NACLIP, SCLIP, ClearCLIP, MaskCLIP, CLIP)."""
from __future__ import annotations

import torch
from torch import nn

from segexp.attention import AttentionSpec, install
from segexp.models.clip import dense_features


class StrategyDense(nn.Module):
    def __init__(self, visual: nn.Module, spec: AttentionSpec | None):
        super().__init__()
        self.report = install(visual, spec) if spec is not None else []

    def forward(self, visual, images: torch.Tensor, queries=None, logit_scale=None) -> torch.Tensor:
        """images [B,3,H,W] → patch features [B, N, E]."""
        return dense_features(visual, images)[:, 1:]
