"""`install(model, spec)`: apply an `attention` group to any supported ViT; `original_attention`: undo it for a while."""
from __future__ import annotations

import contextlib
import logging

from torch import nn

from segexp.attention.adapter import adapter_for
from segexp.attention.layer import LayerAttention
from segexp.attention.spec import Arch, AttentionSpec

log = logging.getLogger(__name__)


def install(model: nn.Module, spec: AttentionSpec) -> list[str]:
    """Swap the attention of the chosen blocks; returns one report line per modified block."""
    adapter = adapter_for(model)
    depth = adapter.depth
    report = []
    for i in spec.resolve_layers(depth):
        attn = LayerAttention(spec.strategy.value, spec.std, reduced=spec.arch is Arch.reduced, prior_scale=spec.prior_scale)
        adapter.attach(i, attn)
        std = f" std={spec.std:g}" if attn.strategy in ("neighbour", "gaussian") else ""
        report.append(
            f"{type(adapter).__name__}: block {i}/{depth - 1} <- {attn.strategy}{std} arch={spec.arch.value} "
            f"({adapter.describe(i)})"
        )
    for line in report:
        log.info("attention: %s", line)
    return report


@contextlib.contextmanager
def original_attention(model: nn.Module):
    """Run `model`'s blocks as upstream wrote them inside the block (e.g. CLIP's own CLS beside modified dense tokens)."""
    layers = [m for m in model.modules() if isinstance(m, LayerAttention) and m.enabled]
    for m in layers:
        m.enabled = False
    try:
        yield model
    finally:
        for m in layers:
            m.enabled = True
