"""The per-block attention object that every adapter plugs into a ViT block."""
from __future__ import annotations

import torch
from torch import nn

from segexp.attention.prior import neighbour_prior
from segexp.attention.strategies import STRATEGIES


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
        return info.fn(q, k, v, scale, bias, prior, dropout_p)

    def extra_repr(self) -> str:
        return f"strategy={self.strategy}, std={self.std}, prior_scale={self.prior_scale}, reduced={self.reduced}"
