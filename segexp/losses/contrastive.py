"""CLIP's symmetric image↔text InfoNCE (open_clip's ClipLoss) with the logit-scale clamp."""
from __future__ import annotations

import math

import torch
from torch import nn


class SymmetricContrastiveLoss(nn.Module):
    """loss = ½ [CE(s·I Tᵀ, diag) + CE(s·T Iᵀ, diag)] on L2-normalised features; s = exp(logit_scale).

    `max_scale` is the clamp CLIP applies to s (100): `clamp_(logit_scale)` keeps the learnable parameter at
    or below ln(max_scale).
    """

    def __init__(self, max_scale: float = 100.0):
        super().__init__()
        from open_clip.loss import ClipLoss

        self.loss = ClipLoss()
        self.max_log_scale = math.log(max_scale)

    def clamp_(self, logit_scale: torch.Tensor) -> None:
        with torch.no_grad():
            logit_scale.clamp_(0, self.max_log_scale)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        return self.loss(image_features, text_features, logit_scale.exp())
