"""open_clip's `VisionTransformer` (open_clip_torch 3.3) as a segexp ViT family.

A block's attention module is given a strategy-aware `forward` (`adopt`: same object, parameters and names), and
the block's own forward stays open_clip's: layer scale, residuals, MLP and every dropout are upstream code.
Both block types open_clip builds are covered:

* `ResidualAttentionBlock` (every pretrained CLIP): its `nn.MultiheadAttention` becomes `StrategyMultiheadAttention`;
* `CustomResidualAttentionBlock` (qk-norm, NormFormer head scale, sub-LN, scale_attn/scale_fc): its
  `open_clip.transformer.Attention` becomes `StrategyOpenCLIPAttention`. Its scaled-cosine variant (Swin-V2
  logits) is refused: the strategies are defined on dot-product logits.

With `attention.enabled = False` (`segexp.attention.original_attention`) both run the upstream forward.
`arch=reduced` replaces the block's forward by its attention branch alone (no residual, no MLP, no layer scale),
as NACLIP and ClearCLIP run their last block.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from open_clip.transformer import Attention, CustomResidualAttentionBlock, ResidualAttentionBlock, VisionTransformer
from torch import nn

from segexp.attention.adapter import ViTAdapter, active, adopt, grid_probe, merge_heads, register_adapter, split_heads
from segexp.errors import ConfigError


def _additive_mask(mask: torch.Tensor | None, batch: int, heads: int, dtype: torch.dtype) -> torch.Tensor | None:
    """open_clip's masks ([T,T] or [B*heads,T,T], bool = masked out) → an additive bias broadcastable to [B,h,T,T]."""
    if mask is None:
        return None
    if mask.ndim == 3:
        mask = mask.reshape(batch, heads, *mask.shape[-2:])
    if mask.dtype == torch.bool:
        return torch.zeros_like(mask, dtype=dtype).masked_fill_(mask, float("-inf"))
    return mask.to(dtype)


class StrategyMultiheadAttention(nn.MultiheadAttention):
    """`nn.MultiheadAttention` (batch-first self-attention) whose score function is a LayerAttention.

    The packed-projection path of torch 2.14's `F.multi_head_attention_forward` (in-projection, heads, SDPA with
    the module's dropout, out-projection), restated around the strategy; other calls go to torch's own forward."""

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        attn = active(self)
        if attn is None:
            return super().forward(query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                                   attn_mask=attn_mask, average_attn_weights=average_attn_weights, is_causal=is_causal)
        if key is not query or value is not query or key_padding_mask is not None or is_causal:
            raise ValueError("segexp attention strategies apply to self-attention without padding or causal masks")
        b, t, _ = query.shape  # [B, T, D]
        q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        grid = self._segexp_probe()
        bias = _additive_mask(attn_mask, b, self.num_heads, q.dtype)
        o = attn(split_heads(q, self.num_heads), split_heads(k, self.num_heads), split_heads(v, self.num_heads),
                 grid, t - grid[0] * grid[1], bias=bias, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(merge_heads(o)), None


class StrategyOpenCLIPAttention(Attention):
    """open_clip's own `Attention` (custom blocks) whose score function is a LayerAttention.

    open_clip 3.3's `Attention.forward` (dot-product path), copied around the strategy: qk-norm, head scale,
    inner norm, projection and dropouts as upstream."""

    def forward(self, x, attn_mask=None):
        attn = active(self)
        if attn is None:
            return super().forward(x, attn_mask=attn_mask)
        b, t, c = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (split_heads(z, self.num_heads) for z in (q, k, v))
        q, k = self.ln_q(q), self.ln_k(k)
        grid = self._segexp_probe()
        o = attn(q, k, v, grid, t - grid[0] * grid[1], bias=_additive_mask(attn_mask, b, self.num_heads, q.dtype),
                 dropout_p=self.attn_drop.p if self.training else 0.0)
        if self.head_scale is not None:
            o = o * self.head_scale
        return self.out_drop(self.out_proj(self.ln_inner(merge_heads(o))))


def _reduced_residual_block(self: ResidualAttentionBlock, q_x, k_x=None, v_x=None, attn_mask=None):
    if active(self.attn) is None:
        return type(self).forward(self, q_x, k_x, v_x, attn_mask=attn_mask)
    return self.attention(q_x=self.ln_1(q_x), attn_mask=attn_mask)


def _reduced_custom_block(self: CustomResidualAttentionBlock, x, attn_mask=None):
    if active(self.attn) is None:
        return type(self).forward(self, x, attn_mask=attn_mask)
    return self.ln_attn(self.attn(self.ln_1(x), attn_mask=attn_mask))


@register_adapter
class OpenCLIPAdapter(ViTAdapter):
    """open_clip `VisionTransformer` (or a `CLIP` holding one as `.visual`)."""

    @staticmethod
    def matches(model):
        return isinstance(model, VisionTransformer) or isinstance(getattr(model, "visual", None), VisionTransformer)

    def __init__(self, model):
        super().__init__(getattr(model, "visual", model))
        if not self.model.transformer.batch_first:
            raise ConfigError("segexp attention needs a batch-first open_clip transformer (open_clip's default)")

    def blocks(self):
        return list(self.model.transformer.resblocks)

    def attach(self, index, attn):
        block = self.blocks()[index]
        if isinstance(block, ResidualAttentionBlock):
            mha = block.attn
            if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
                raise ConfigError(f"block {index}: segexp attention needs a plain packed-qkv nn.MultiheadAttention")
            adopt(mha, StrategyMultiheadAttention)
            reduced = _reduced_residual_block
        elif isinstance(block, CustomResidualAttentionBlock):
            if block.attn.logit_scale is not None:
                raise ConfigError(f"block {index} uses scaled cosine attention (scaled_cosine_attn=True): segexp's "
                                  f"strategies are defined on dot-product logits and do not support it")
            adopt(block.attn, StrategyOpenCLIPAttention)
            reduced = _reduced_custom_block
        else:
            raise ConfigError(f"block {index} is a {type(block).__name__}: segexp supports open_clip's "
                              f"ResidualAttentionBlock and CustomResidualAttentionBlock")
        block.attn.segexp_attn = attn
        block.attn.__dict__["_segexp_probe"] = grid_probe(self.model, self.model.conv1)
        block.__dict__.pop("forward", None)  # a re-install with arch=vanilla restores the class's forward
        if attn.reduced:
            # a partial, unlike a bound MethodType, pickles (ddp_spawn ships the model to its ranks)
            block.forward = functools.partial(reduced, block)
