"""Losses as plain functions and nn.Modules (no Lightning)."""
from segexp.losses.contrastive import SymmetricContrastiveLoss
from segexp.losses.distill import DistillLoss
from segexp.losses.reid import ReIDLoss
from segexp.losses.region_align import SegAlignLoss
from segexp.losses.seg import FocalDiceLoss, bce_loss, dice_loss, focal_loss

__all__ = ["DistillLoss", "FocalDiceLoss", "ReIDLoss", "SegAlignLoss", "SymmetricContrastiveLoss", "bce_loss", "dice_loss", "focal_loss"]
