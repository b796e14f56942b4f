"""timm's `VisionTransformer` (timm 1.0) as a segexp ViT family.

`StrategyAttention` is a timm `Attention` whose score function is a LayerAttention. It is a valid `attn_layer`
(timm's own extension point: `timm.create_model(name, attn_layer=StrategyAttention)` builds every block with it);
on a model built with timm's default `Attention`, `install` gives the chosen blocks' attention this class
(`adopt`: same object, parameters and names). The block's forward stays timm's (layer scale, drop-path, MLP);
the attention keeps every part of timm's: qk-norm, attention dropout, scale-norm, the sigmoid output gate,
the projection and its dropout. `arch=reduced` runs the block's attention branch alone.
"""
from __future__ import annotations

import functools

from timm.layers import Attention
from timm.models.vision_transformer import Block, VisionTransformer

from segexp.attention.adapter import ViTAdapter, active, adopt, grid_probe, merge_heads, register_adapter
from segexp.errors import ConfigError


class StrategyAttention(Attention):
    """timm 1.0.31's `Attention.forward` (copied: it has no hook between q/k/v and the output), with the
    (q, k, v) → output step taken by the attached LayerAttention."""

    def forward(self, x, attn_mask=None, is_causal=False):
        attn = active(self)
        if attn is None:
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
        if is_causal:
            raise ValueError("segexp attention strategies do not apply to causal attention")
        b, t, _ = x.shape  # [B, T, D]
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        q, k, v = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)  # [B, heads, T, d]
        grid = self._segexp_probe()
        o = attn(q, k, v, grid, t - grid[0] * grid[1], bias=attn_mask, scale=self.scale,
                 dropout_p=self.attn_drop.p if self.training else 0.0)
        o = self.norm(merge_heads(o))
        if gate is not None:
            o = o * gate
        return self.proj_drop(self.proj(o))


def _reduced_block(self: Block, x, attn_mask=None, is_causal=False):
    if active(self.attn) is None:
        return type(self).forward(self, x, attn_mask=attn_mask, is_causal=is_causal)
    return self.attn(self.norm1(x), attn_mask=attn_mask)


@register_adapter
class TimmViTAdapter(ViTAdapter):
    """timm `VisionTransformer` (CLS / register prefix tokens, global attention)."""

    @staticmethod
    def matches(model):
        return isinstance(model, VisionTransformer)

    def blocks(self):
        return list(self.model.blocks)

    def attach(self, index, attn):
        block = self.blocks()[index]
        if type(block) is not Block:
            raise ConfigError(f"block {index} is a timm {type(block).__name__}: segexp supports timm's pre-norm Block")
        try:
            adopt(block.attn, StrategyAttention)
        except TypeError as e:
            raise ConfigError(f"block {index}: {e}") from None
        block.attn.segexp_attn = attn
        block.attn.__dict__["_segexp_probe"] = grid_probe(self.model, self.model.patch_embed.proj)
        block.__dict__.pop("forward", None)
        if attn.reduced:
            # a partial, unlike a bound MethodType, pickles (ddp_spawn ships the model to its ranks)
            block.forward = functools.partial(_reduced_block, block)
