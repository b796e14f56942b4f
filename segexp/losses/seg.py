"""Mask losses: BCE, Dice and sigmoid focal on logits, each ignoring pixels labelled `ignore_index`."""
from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F

from segexp.constraints import Fraction, NonNegative

IGNORE = 255


def _prepare(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE):
    """logits [B,1,H,W] or [B,H,W], target [B,H,W] in {0,1,ignore} → flat logits, float target, valid weight."""
    logits = logits.reshape(logits.shape[0], -1)
    target = target.reshape(target.shape[0], -1)
    valid = (target != ignore_index).to(logits.dtype)
    return logits, (target == 1).to(logits.dtype), valid


def bce_loss(logits, target, ignore_index: int = IGNORE) -> torch.Tensor:
    x, t, w = _prepare(logits, target, ignore_index)
    per = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    return (per * w).sum() / w.sum().clamp_min(1.0)


def dice_loss(logits, target, smooth: float = 1.0, ignore_index: int = IGNORE) -> torch.Tensor:
    """1 - (2Σpt + s) / (Σp + Σt + s) per mask (smooth on both sides, as UNINEXT and SAM), mean over the batch."""
    x, t, w = _prepare(logits, target, ignore_index)
    p = torch.sigmoid(x) * w
    t = t * w
    return (1 - (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)).mean()


def focal_loss(logits, target, alpha: float = 0.25, gamma: float = 2.0, ignore_index: int = IGNORE) -> torch.Tensor:
    """Sigmoid focal loss (RetinaNet / SAM), mean over valid pixels."""
    x, t, w = _prepare(logits, target, ignore_index)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    return (loss * w).sum() / w.sum().clamp_min(1.0)


class FocalDiceLoss(torch.nn.Module):
    """focal_weight·focal + dice_weight·Dice on mask logits (SAM trains its decoder with 20:1)."""

    def __init__(self, focal_weight: Annotated[float, NonNegative] = 20.0, dice_weight: Annotated[float, NonNegative] = 1.0,
                 alpha: Annotated[float, Fraction] = 0.25, gamma: Annotated[float, NonNegative] = 2.0):
        super().__init__()
        self.focal_weight, self.dice_weight, self.alpha, self.gamma = focal_weight, dice_weight, alpha, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.focal_weight * focal_loss(logits, target, self.alpha, self.gamma)
                + self.dice_weight * dice_loss(logits, target))
