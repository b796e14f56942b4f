"""What the dense methods and the segmenter share: the output head and the patch-grid cosine logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def project(visual, tokens: torch.Tensor) -> torch.Tensor:
    """ln_post + proj on every token: [B, T, width] → [B, T, E]."""
    t = visual.ln_post(tokens)
    return t @ visual.proj if visual.proj is not None else t


def grid_logits(patch_feats: torch.Tensor, queries: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Cosine logits of patch features [B, N, E] with unit queries [Q, E] → [B, Q, gh, gw]."""
    f = F.normalize(patch_feats, dim=-1)
    return (f @ queries.t()).transpose(1, 2).reshape(len(f), -1, *grid)
