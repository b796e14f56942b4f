"""`install(model, spec)`: apply an `attention` group to any supported ViT; `original_attention`: undo it for a while."""
from __future__ import annotations

import contextlib
import logging

from torch import nn

from segexp.attention.adapter import adapter_for
from segexp.attention.layer import LayerAttention
from segexp.attention.spec import Arch, AttentionSpec
from segexp.errors import ConfigError

log = logging.getLogger(__name__)


def install(model: nn.Module, spec: AttentionSpec) -> list[str]:
    """Swap the attention of the chosen blocks; returns one report line per modified block."""
    if not isinstance(spec, AttentionSpec):
        raise ConfigError(f"attention={type(spec).__name__.removesuffix('Spec').lower()} is a dense-feature method "
                          f"(it reads middle blocks and re-runs the last one), available with model=naclip; this model "
                          f"takes a per-block strategy (attention=neighbour|csa|qq|value|...)")
    depth = adapter_for(model).depth
    return attach_layers(model, {i: LayerAttention(spec.strategy.value, spec.std, reduced=spec.arch is Arch.reduced,
                                                   prior_scale=spec.prior_scale)
                                 for i in spec.resolve_layers(depth)})


def attach_layers(model: nn.Module, layers: dict[int, LayerAttention], role: str = "") -> list[str]:
    """Put each LayerAttention into its block (`index → attention`); returns (and logs) one line per block.

    Methods that read middle blocks or edit the last block's attention keep the objects they attach."""
    adapter = adapter_for(model)
    depth = adapter.depth
    report = []
    for i, attn in sorted(layers.items()):
        adapter.attach(i, attn)
        std = f" std={attn.std:g}" if attn.strategy in ("neighbour", "gaussian") else ""
        arch = "reduced" if attn.reduced else "vanilla"
        report.append(f"{type(adapter).__name__}: block {i}/{depth - 1} <- {attn.strategy}{std} arch={arch}"
                      f"{' ' + role if role else ''} ({adapter.describe(i)})")
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
