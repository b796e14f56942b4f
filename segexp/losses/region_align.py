"""The AlphaClipAlign objective: BCE + Dice on the mask, MSE to the teacher's region embedding."""
from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from segexp.constraints import NonNegative
from segexp.losses.seg import bce_loss, dice_loss


class SegAlignLoss(nn.Module):
    """total = seg_weight·(BCE + Dice) + align_weight·MSE(student, teacher).

    A weight of 0 removes its term from the graph (and tells the method it need not run the teacher).
    `normalise=True` compares L2-normalised embeddings instead of raw ones.
    """

    def __init__(self, seg_weight: Annotated[float, NonNegative] = 1.0, align_weight: Annotated[float, NonNegative] = 0.05,
                 dice_smooth: Annotated[float, NonNegative] = 1.0, normalise: bool = False):
        super().__init__()
        if seg_weight < 0 or align_weight < 0 or seg_weight + align_weight == 0:
            raise ValueError(f"loss weights must be >= 0 and not both 0 (seg={seg_weight}, align={align_weight})")
        self.seg_weight, self.align_weight = float(seg_weight), float(align_weight)
        self.dice_smooth, self.normalise = dice_smooth, normalise

    @property
    def needs_teacher(self) -> bool:
        return self.align_weight > 0

    def forward(self, seg_logits: torch.Tensor, target_mask: torch.Tensor,
                student: torch.Tensor | None = None, teacher: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        total = seg_logits.new_zeros(())
        if self.seg_weight > 0:
            out["loss_bce"] = bce_loss(seg_logits, target_mask)
            out["loss_dice"] = dice_loss(seg_logits, target_mask, self.dice_smooth)
            out["loss_seg"] = out["loss_bce"] + out["loss_dice"]
            total = total + self.seg_weight * out["loss_seg"]
        if self.align_weight > 0:
            if student is None or teacher is None:
                raise ValueError("align_weight > 0 needs the student and teacher embeddings")
            s, t = (F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)) if self.normalise else (student, teacher)
            out["loss_align"] = F.mse_loss(s, t.to(s.dtype))
            total = total + self.align_weight * out["loss_align"]
        out["loss_total"] = total
        return out
