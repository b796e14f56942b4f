"""transformers' SAM3 ViT (`Sam3ViTModel`, inside `Sam3VisionModel` / `Sam3Model`) as a segexp ViT family.

SAM3's attention class calls whatever `config._attn_implementation` names, with `attention_mask=None` and
post-RoPE q / k. The adapter registers one attention function, "segexp", through transformers'
`AttentionInterface`: layers that carry a `LayerAttention` use it (on their own token grid: the 24x24 window
in windowed layers, the full grid in global ones); every other layer falls through to SDPA unchanged.
No model file is forked.
"""
from __future__ import annotations

import functools
import sys

import torch

from segexp.attention.adapter import ViTAdapter, active, register_adapter

IMPLEMENTATION = "segexp"


def segexp_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, **kwargs):
    """transformers attention-interface function: [B, heads, T, d] in, ([B, T, heads, d], None) out."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    attn = active(module)
    if attn is None:
        return ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    out = attn(query, key, value, module.segexp_grid, prefix=0, bias=attention_mask, scale=scaling, dropout_p=dropout)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(IMPLEMENTATION, segexp_attention)


def _reduced_layer_forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
    """Sam3ViTLayer with arch=reduced: the attention output alone (no residual, no MLP).

    The attention branch of transformers 5.24's `Sam3ViTLayer.forward`, copied: the layer has no hook for it."""
    from transformers.models.sam3.modeling_sam3 import window_partition, window_unpartition

    if active(self.attention) is None:
        return type(self).forward(self, hidden_states, **kwargs)
    x = self.layer_norm1(hidden_states)
    if self.window_size > 0:
        size = x.shape[1:3]
        x, pad = window_partition(x, self.window_size)
    x, _ = self.attention(x, self.rotary_emb(x, self.position_ids), **kwargs)
    if self.window_size > 0:
        x = window_unpartition(x, self.window_size, pad, size)
    return x


def _find_vit(model):
    from transformers.models.sam3.modeling_sam3 import Sam3ViTModel

    for candidate in (model, getattr(model, "backbone", None), getattr(getattr(model, "vision_encoder", None), "backbone", None)):
        if isinstance(candidate, Sam3ViTModel):
            return candidate
    return None


@register_adapter
class Sam3ViTAdapter(ViTAdapter):
    @staticmethod
    def matches(model) -> bool:
        if "transformers" not in sys.modules:  # a transformers model implies transformers is imported
            return False
        try:
            return _find_vit(model) is not None
        except ImportError:  # pragma: no cover - older transformers without SAM3
            return False

    def __init__(self, model):
        super().__init__(_find_vit(model))
        _register()
        self.model.config._attn_implementation = IMPLEMENTATION
        g = self.model.config.image_size // self.model.config.patch_size
        self.full_grid = (g, g)

    def blocks(self):
        return list(self.model.layers)

    def grid(self, index: int) -> tuple[int, int]:
        ws = self.blocks()[index].window_size
        return (ws, ws) if ws > 0 else self.full_grid

    def attach(self, index, attn):
        layer = self.blocks()[index]
        layer.attention.segexp_attn = attn
        layer.attention.segexp_grid = self.grid(index)
        if attn.reduced:
            # a partial, unlike a bound MethodType, pickles (ddp_spawn ships the model to its ranks)
            layer.forward = functools.partial(_reduced_layer_forward, layer)

    def describe(self, index):
        gh, gw = self.grid(index)
        return f"window {gh}x{gw}" if self.blocks()[index].window_size > 0 else f"global {gh}x{gw}"
