"""The per-block attention object that every adapter plugs into a ViT block, and the edits methods make to it."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from segexp.attention.prior import neighbour_prior
from segexp.attention.strategies import STRATEGIES


Tensor = torch.Tensor


@dataclass(frozen=True)
class AttentionEdit:
    """What a method (ResCLIP, SC-CLIP) changes in one block's attention while it is applied (`LayerAttention.edit`).

    The strategy's attention is written out term by term (`StrategyInfo.terms`); all tensors are [B, heads, T, T]
    or broadcastable to it (a map shared by the heads is [B, 1, T, T]).
    """

    logits: Callable[[Tensor], Tensor] | None = None  # each term's scaled logits, before the bias / Ω and the softmax
    probs: Callable[[Tensor], Tensor] | None = None  # the summed probabilities → the weights applied to v
    observe: Callable[[Tensor], None] | None = None  # is shown the final weights (e.g. to average them over blocks)


class LayerAttention(nn.Module):
    """Computes one block's attention from per-head q, k, v with a chosen strategy.

    It owns no parameters, so attaching it to a block leaves the block's state dict unchanged.
    `reduced=True` tells the block to return the attention output alone (NACLIP's last block).
    `enabled=False` (see `segexp.attention.original_attention`) makes the block run as upstream wrote it.
    """

    def __init__(self, strategy: str = "vanilla", std: float = 5.0, reduced: bool = False, prior_scale: float = 1.0):
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown attention strategy {strategy!r}; choose from {sorted(STRATEGIES)}")
        self.strategy = strategy
        self.std = float(std)
        self.reduced = bool(reduced)
        self.prior_scale = float(prior_scale)
        self.enabled = True
        self.edits: AttentionEdit | None = None

    @contextlib.contextmanager
    def edit(self, edit: AttentionEdit) -> Iterator[LayerAttention]:
        """Apply `edit` to every forward inside the block (nested edits are refused: one owner at a time)."""
        if self.edits is not None:
            raise RuntimeError("this block's attention is already being edited")
        self.edits = edit
        try:
            yield self
        finally:
            self.edits = None

    def forward(
        self,
        q: torch.Tensor,  # [B, heads, T, d]
        k: torch.Tensor,
        v: torch.Tensor,
        grid: tuple[int, int],
        prefix: int = 0,
        bias: torch.Tensor | None = None,
        scale: float | None = None,
        dropout_p: float = 0.0,
    ) -> torch.Tensor:  # [B, heads, T, d]
        info = STRATEGIES[self.strategy if self.enabled else "vanilla"]
        prior = None
        if info.uses_prior:
            prior = neighbour_prior(grid, self.std, prefix=prefix, dtype=q.dtype, device=q.device)
            if self.prior_scale != 1.0:
                prior = prior * self.prior_scale
            if prior.shape[-1] != k.shape[-2]:
                raise RuntimeError(
                    f"token count {k.shape[-2]} does not match grid {grid} + {prefix} prefix tokens"
                )
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        if self.edits is None or not self.enabled:
            return info.fn(q, k, v, scale, bias, prior, dropout_p)
        return self._edited(info.terms, q, k, v, scale, bias, prior, dropout_p)

    def _edited(self, terms, q, k, v, scale, bias, prior, dropout_p) -> Tensor:
        """The strategy's attention with explicit weights, so that `self.edits` can act on them."""
        if not terms:
            raise ValueError(f"attention strategy {self.strategy!r} has no attention map to edit")
        edit, named = self.edits, {"q": q, "k": k}
        probs = None
        for a, b in terms:
            logits = (named[a] @ named[b].transpose(-2, -1)) * scale  # [B, h, T, T]
            if edit.logits is not None:
                logits = edit.logits(logits)
            for extra in (bias, prior):
                if extra is not None:
                    logits = logits + extra
            p = logits.softmax(-1)
            probs = p if probs is None else probs + p
        if edit.probs is not None:
            probs = edit.probs(probs)
        if edit.observe is not None:
            edit.observe(probs)
        if dropout_p > 0:
            probs = F.dropout(probs, dropout_p)
        return probs @ v

    def extra_repr(self) -> str:
        return f"strategy={self.strategy}, std={self.std}, prior_scale={self.prior_scale}, reduced={self.reduced}"
