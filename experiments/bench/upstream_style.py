"""A straightforward re-implementation of the upstream NACLIP inference path, for benchmarking only.

It follows sinahmr/NACLIP's structure: one ViT forward per sliding-window crop, the last block's attention as
bmm + softmax, and the Gaussian addition Ω built by convolving one-hot grid images with a (2h-1)x(2w-1)
window (cached by grid only, as upstream). Same weights and numbers as segexp's path; only the execution differs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from segexp.models.clip import visual_embed
from segexp.models.naclip import slide_windows

_OMEGA_CACHE: dict = {}


def gaussian_window(dim1: int, dim2: int, std: float) -> torch.Tensor:
    u = torch.linspace(-(dim1 - 1) / 2, (dim1 - 1) / 2, dim1) / (std * math.sqrt(2))
    v = torch.linspace(-(dim2 - 1) / 2, (dim2 - 1) / 2, dim2) / (std * math.sqrt(2))
    return torch.exp(-(u[:, None] ** 2 + v[None, :] ** 2))


def omega_by_convolution(gh: int, gw: int, std: float, rows: int | None = None) -> torch.Tensor:
    """Upstream's construction: conv of N one-hot maps with the window; `rows` limits it to the first rows."""
    n = gh * gw
    window = gaussian_window(2 * gh - 1, 2 * gw - 1, std)[None, None]
    take = n if rows is None else min(rows, n)
    onehot = torch.zeros(take, 1, gh, gw)
    onehot.view(take, -1)[torch.arange(take), torch.arange(take)] = 1.0
    out = F.conv2d(onehot, window, padding=(gh - 1, gw - 1)).view(take, n)
    return F.pad(out, (1, 0, 1 if rows is None else 0, 0))


def last_block(block, x: torch.Tensor, grid, std: float) -> torch.Tensor:
    """NACLIP's reduced last block with bmm + softmax (x batch-first [B, T, D])."""
    attn = block.attn
    y = block.ln_1(x).transpose(0, 1)  # LND like upstream
    t, b, d = y.shape
    h = attn.num_heads
    q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    k = k.contiguous().view(t, b * h, d // h).transpose(0, 1)
    v = v.contiguous().view(t, b * h, d // h).transpose(0, 1)
    if grid not in _OMEGA_CACHE:  # upstream keys the cache by grid only
        _OMEGA_CACHE[grid] = omega_by_convolution(*grid, std)
    logits = torch.bmm(k, k.transpose(1, 2)) * (d // h) ** -0.5 + _OMEGA_CACHE[grid][None]
    out = torch.bmm(logits.softmax(-1), v).transpose(0, 1).contiguous().view(t, b, d)
    return attn.out_proj(out).transpose(0, 1)


@torch.no_grad()
def upstream_raw_logits(clip, query_features: torch.Tensor, image: torch.Tensor, crop=224, stride=112, std=5.0):
    visual = clip.visual
    blocks = list(visual.transformer.resblocks)
    h, w = image.shape[-2:]
    preds = image.new_zeros(1, query_features.shape[0], h, w)
    count = image.new_zeros(1, 1, h, w)
    for y1, y2, x1, x2 in slide_windows(h, w, crop, stride):
        x, grid = visual_embed(visual, image[..., y1:y2, x1:x2])
        for blk in blocks[:-1]:
            x = blk(x)
        x = visual.ln_post(last_block(blocks[-1], x, grid, std)) @ visual.proj
        feats = F.normalize(x[:, 1:], dim=-1)
        logits = (feats @ query_features.t()).transpose(1, 2).reshape(1, -1, *grid)
        preds[..., y1:y2, x1:x2] += F.interpolate(logits, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)
        count[..., y1:y2, x1:x2] += 1
    return preds / count
