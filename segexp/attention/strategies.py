"""Attention strategies: functions of per-head (q, k, v) → per-head output.

All tensors are [B, heads, T, d]. `scale` is the usual d^-1/2. `bias` is an additive logit bias
(broadcastable to [B, heads, T, T]) that the backbone itself needs (e.g. SAM's relative positions);
`prior` is the neighbourhood prior Ω, passed only to strategies that declare `uses_prior`.
Every softmax strategy goes through `F.scaled_dot_product_attention`, which computes
softmax(a bᵀ·scale + mask) v exactly, so the prior rides along as an additive `attn_mask`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _sum_bias(*biases: Tensor | None) -> Tensor | None:
    out = None
    for b in biases:
        if b is not None:
            out = b if out is None else out + b
    return out


def _sdpa(a: Tensor, b: Tensor, v: Tensor, scale: float, mask: Tensor | None) -> Tensor:
    if mask is not None and mask.dtype != a.dtype:
        mask = mask.to(a.dtype)
    return F.scaled_dot_product_attention(a, b, v, attn_mask=mask, scale=scale)


def vanilla(q, k, v, scale, bias=None, prior=None):
    """CLIP / any ViT: softmax(q kᵀ s) v."""
    return _sdpa(q, k, v, scale, bias)


def gaussian(q, k, v, scale, bias=None, prior=None):
    """softmax(q kᵀ s + Ω) v: the ordinary attention with the neighbourhood prior added."""
    return _sdpa(q, k, v, scale, _sum_bias(bias, prior))


def neighbour(q, k, v, scale, bias=None, prior=None):
    """NACLIP: softmax(k kᵀ s + Ω) v."""
    return _sdpa(k, k, v, scale, _sum_bias(bias, prior))


def kk(q, k, v, scale, bias=None, prior=None):
    """Key-key similarity: softmax(k kᵀ s) v."""
    return _sdpa(k, k, v, scale, bias)


def qq(q, k, v, scale, bias=None, prior=None):
    """ClearCLIP: softmax(q qᵀ s) v."""
    return _sdpa(q, q, v, scale, bias)


def csa(q, k, v, scale, bias=None, prior=None):
    """SCLIP correlative self-attention: [softmax(q qᵀ s) + softmax(k kᵀ s)] v, rows sum to 2."""
    return _sdpa(q, q, v, scale, bias) + _sdpa(k, k, v, scale, bias)


def value(q, k, v, scale, bias=None, prior=None):
    """MaskCLIP: identity attention, each token keeps its own value."""
    return v


@dataclass(frozen=True)
class StrategyInfo:
    fn: Callable[..., Tensor]
    uses_prior: bool


STRATEGIES: dict[str, StrategyInfo] = {
    "vanilla": StrategyInfo(vanilla, False),
    "gaussian": StrategyInfo(gaussian, True),
    "neighbour": StrategyInfo(neighbour, True),
    "kk": StrategyInfo(kk, False),
    "qq": StrategyInfo(qq, False),
    "csa": StrategyInfo(csa, False),
    "value": StrategyInfo(value, False),
}
