"""Heads on top of a ViT map: the light mask decoder and the region-pooling alignment head."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segexp.models.layers import LayerNorm2d


class SegHead(nn.Module):
    """SAM-style upscaling head: [B,C,h,w] → logits [B,out,H,W] (×16 by transposed convs, then bilinear)."""

    def __init__(self, in_channels: int, channels: Sequence[int] = (256, 128, 64, 64), out_channels: int = 1):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c0, 1), LayerNorm2d(c0), nn.GELU(),
            nn.ConvTranspose2d(c0, c1, 2, 2), LayerNorm2d(c1), nn.GELU(),  # ×2
            nn.ConvTranspose2d(c1, c2, 2, 2), LayerNorm2d(c2), nn.GELU(),  # ×4
            nn.ConvTranspose2d(c2, c3, 2, 2), nn.GELU(),  # ×8
            nn.Conv2d(c3, out_channels, 1),
        )

    def forward(self, x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.body(x), size=out_size, mode="bilinear", align_corners=False)


def region_pool(tokens: torch.Tensor, mask01: torch.Tensor, patch: int, threshold: float = 0.1) -> torch.Tensor:
    """Mean of the tokens a region covers.

    tokens [B,C,h,w]; mask01 [B,1,H,W] the RAW {0,1} region mask (not the normalised alpha: on
    Normalize(0.5, 0.26) values, `> 0.1` would mean "more than 52.6 % foreground").
    A token is valid when avg_pool(mask, patch) > threshold; with no valid token the mean of all
    tokens is used. Returns [B,C].
    """
    b, c, h, w = tokens.shape
    cover = F.avg_pool2d(mask01.float(), kernel_size=patch, stride=patch)[:, 0, :h, :w]  # [B,h,w]
    valid = (cover > threshold).flatten(1).to(tokens.dtype)  # [B,N]
    empty = valid.sum(1) == 0
    valid[empty] = 1.0  # fall back to every token
    flat = tokens.flatten(2)  # [B,C,N]
    return (flat * valid[:, None]).sum(-1) / valid.sum(1, keepdim=True)


class AlignHead(nn.Module):
    """Region pooling → optional CLIP ln_post → Linear(width, embed) initialised from CLIP's proj.T."""

    def __init__(self, ln_post: nn.LayerNorm | None, proj: torch.Tensor, patch: int, threshold: float = 0.1):
        super().__init__()
        width, embed = proj.shape
        self.ln_post = ln_post
        self.proj = nn.Linear(width, embed)
        with torch.no_grad():
            self.proj.weight.copy_(proj.t())
            self.proj.bias.zero_()
        self.patch = patch
        self.threshold = threshold

    def forward(self, tokens_nhwc: torch.Tensor, mask01: torch.Tensor) -> torch.Tensor:  # -> [B, embed]
        t = self.ln_post(tokens_nhwc) if self.ln_post is not None else tokens_nhwc
        return self.proj(region_pool(t.permute(0, 3, 1, 2), mask01, self.patch, self.threshold))
