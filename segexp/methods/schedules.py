"""Learning-rate schedules usable as `optim.scheduler` partials (called with the optimiser and T_max steps)."""
from __future__ import annotations

import math

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, T_max: int, warmup_steps: int = 100, min_factor: float = 0.0):
    """Linear warm-up for `warmup_steps`, then cosine decay to `min_factor`·lr at step T_max."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min((step - warmup_steps) / max(T_max - warmup_steps, 1), 1.0)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
