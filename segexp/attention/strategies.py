"""Attention strategies: functions of per-head (q, k, v) → per-head output.

All tensors are [B, heads, T, d]. `scale` is the usual d^-1/2. `bias` is an additive logit bias
(broadcastable to [B, heads, T, T]) that the backbone itself needs (e.g. SAM's relative positions);
`prior` is the neighbourhood prior Ω, passed only to strategies that declare `uses_prior`.
`dropout_p` is the block's attention dropout (non-zero only in training), applied to the attention weights.
Every softmax strategy goes through `F.scaled_dot_product_attention`, which computes
softmax(a bᵀ·scale + mask) v exactly, so the prior rides along as an additive `attn_mask`, and `vanilla`
draws its dropout mask exactly as the upstream blocks (open_clip, timm) do from the same RNG state.
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


def _sdpa(a: Tensor, b: Tensor, v: Tensor, scale: float, mask: Tensor | None, dropout_p: float = 0.0) -> Tensor:
    if mask is not None and mask.dtype != a.dtype:
        mask = mask.to(a.dtype)
    return F.scaled_dot_product_attention(a, b, v, attn_mask=mask, scale=scale, dropout_p=dropout_p)


def vanilla(q, k, v, scale, bias=None, prior=None, dropout_p=0.0):
    """CLIP / any ViT: softmax(q kᵀ s) v."""
    return _sdpa(q, k, v, scale, bias, dropout_p)


def gaussian(q, k, v, scale, bias=None, prior=None, dropout_p=0.0):
    """softmax(q kᵀ s + Ω) v: the ordinary attention with the neighbourhood prior added."""
    return _sdpa(q, k, v, scale, _sum_bias(bias, prior), dropout_p)


def neighbour(q, k, v, scale, bias=None, prior=None, dropout_p=0.0):
    """NACLIP: softmax(k kᵀ s + Ω) v."""
    return _sdpa(k, k, v, scale, _sum_bias(bias, prior), dropout_p)


def kk(q, k, v, scale, bias=None, prior=None, dropout_p=0.0):
    """Key-key similarity: softmax(k kᵀ s) v."""
    return _sdpa(k, k, v, scale, bias, dropout_p)


def qq(q, k, v, scale, bias=None, prior=None, dropout_p=0.0):
    """ClearCLIP: softmax(q qᵀ s) v."""
    return _sdpa(q, q, v, scale, bias, dropout_p)


def csa(q, k, v, scale, bias=None, prior=None, dropout_p=0.0):
    """SCLIP correlative self-attention: [softmax(q qᵀ s) + softmax(k kᵀ s)] v, rows sum to 2."""
    return _sdpa(q, q, v, scale, bias, dropout_p) + _sdpa(k, k, v, scale, bias, dropout_p)


def value(q, k, v, scale, bias=None, prior=None, dropout_p=0.0):
    """MaskCLIP: identity attention, each token keeps its own value (no weights, nothing to drop)."""
    return v


@dataclass(frozen=True)
class StrategyInfo:
    """`fn` is the fast path; `terms` the same attention written out: the probabilities are the sum over terms
    (a, b) of softmax(a bᵀ·scale + bias [+ Ω if `uses_prior`]) — what methods that edit logits or probabilities
    (ResCLIP, SC-CLIP) act on. `value` has no attention map (empty `terms`)."""

    fn: Callable[..., Tensor]
    uses_prior: bool
    terms: tuple[tuple[str, str], ...]


STRATEGIES: dict[str, StrategyInfo] = {
    "vanilla": StrategyInfo(vanilla, False, (("q", "k"),)),
    "gaussian": StrategyInfo(gaussian, True, (("q", "k"),)),
    "neighbour": StrategyInfo(neighbour, True, (("k", "k"),)),
    "kk": StrategyInfo(kk, False, (("k", "k"),)),
    "qq": StrategyInfo(qq, False, (("q", "q"),)),
    "csa": StrategyInfo(csa, False, (("q", "q"), ("k", "k"))),
    "value": StrategyInfo(value, False, ()),
}
