"""Retrieval metrics on a similarity matrix."""
from __future__ import annotations

import torch


def recall_at_1(sim: torch.Tensor) -> tuple[float, float]:
    """(image→text, text→image) R@1 for a square similarity matrix whose matches are on the diagonal."""
    target = torch.arange(sim.shape[0], device=sim.device)
    return float((sim.argmax(1) == target).float().mean()), float((sim.argmax(0) == target).float().mean())
