"""Pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), as NACLIP calls it.

For each dilation d, the 8 neighbours at offsets (±d, ±d, 0) with replicate borders. σ per colour channel
is ONE unbiased std over every dilation's 3x3 set (8 neighbours + the centre, so the centre counts once per
dilation). Affinities −|I − I_n| / (1e-8 + 0.1σ), averaged over channels, softmax over all neighbours; then
`num_iter` times: mask ← Σ_n α_n · mask_n. Runs on logits, guided by the (normalised) image.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _neighbours(x: torch.Tensor, dilations: Sequence[int]) -> torch.Tensor:
    """[B,C,H,W] → [B,C,K,H,W] with K = 8·len(dilations), replicate padding."""
    h, w = x.shape[-2:]
    out = []
    for d in dilations:
        p = F.pad(x, (d, d, d, d), mode="replicate")
        for oy, ox in _OFFSETS:
            out.append(p[..., d + oy * d : d + oy * d + h, d + ox * d : d + ox * d + w])
    return torch.stack(out, dim=2)


class PAMR(nn.Module):
    def __init__(self, num_iter: int = 10, dilations: Sequence[int] = (8, 16)):
        super().__init__()
        self.num_iter = int(num_iter)
        self.dilations = tuple(int(d) for d in dilations)

    @torch.no_grad()
    def affinity(self, image: torch.Tensor) -> torch.Tensor:  # [B,3,H,W] -> [B,K,H,W]
        nb = _neighbours(image, self.dilations)  # [B,3,K,H,W]
        centre = image.unsqueeze(2)
        samples = torch.cat([torch.cat([centre, nb[:, :, 8 * i : 8 * (i + 1)]], 2) for i in range(len(self.dilations))], 2)
        sigma = samples.std(dim=2, unbiased=True, keepdim=True)  # [B,3,1,H,W]
        a = -(centre - nb).abs() / (1e-8 + 0.1 * sigma)
        return a.mean(1).softmax(dim=1)

    @torch.no_grad()
    def forward(self, image: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """image [B,3,H,W] (normalised), logits [B,Q,H,W] at the image's size → refined logits."""
        if image.shape[-2:] != logits.shape[-2:]:
            logits = F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=True)
        alpha = self.affinity(image)  # [B,K,H,W]
        h, w = logits.shape[-2:]
        for _ in range(self.num_iter):
            # Σ_n α_n · mask_n accumulated view by view: stacking the K shifted copies first ([B,Q,K,H,W]) moves
            # K times the memory and is ~6x slower on CPU
            out = torch.zeros_like(logits)
            n = 0
            for d in self.dilations:
                padded = F.pad(logits, (d, d, d, d), mode="replicate")
                for oy, ox in _OFFSETS:
                    out.addcmul_(padded[..., d + oy * d : d + oy * d + h, d + ox * d : d + ox * d + w], alpha[:, None, n])
                    n += 1
            logits = out
        return logits
