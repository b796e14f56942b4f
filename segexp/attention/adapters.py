"""Adapters: how each ViT family exposes its blocks to the shared attention mechanism.

An adapter knows three things about its family: the list of blocks, the token grid each block sees
(the full patch grid, or the window of a windowed block) and the number of prefix tokens. `attach`
puts a `LayerAttention` into one block; for families we do not own (open_clip, timm) that means
replacing the block's `forward` on the instance, which keeps every parameter name unchanged.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from segexp.attention.layer import LayerAttention


class GridProbe:
    """Records the patch grid of the latest forward from the patch-embedding conv's output."""

    def __init__(self, conv: nn.Module):
        self.grid: tuple[int, int] | None = None
        conv.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):  # output: [B, C, gh, gw]
        self.grid = (int(output.shape[-2]), int(output.shape[-1]))

    def __call__(self) -> tuple[int, int]:
        if self.grid is None:
            raise RuntimeError("the patch grid is unknown: run the model's patch embedding first")
        return self.grid


def _grid_probe(owner: nn.Module, conv: nn.Module) -> GridProbe:
    probe = owner.__dict__.get("_segexp_grid_probe")
    if probe is None:
        probe = GridProbe(conv)
        owner.__dict__["_segexp_grid_probe"] = probe  # plain attribute: not a submodule, not in state_dict
    return probe


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # [B, T, D] -> [B, heads, T, D/heads]
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:  # [B, heads, T, d] -> [B, T, heads*d]
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class ViTAdapter:
    """Base adapter. Subclasses set `matches`, `blocks`, `attach` and `describe`."""

    @staticmethod
    def matches(model: nn.Module) -> bool:
        raise NotImplementedError

    def __init__(self, model: nn.Module):
        self.model = model

    def blocks(self) -> list[nn.Module]:
        raise NotImplementedError

    @property
    def depth(self) -> int:
        return len(self.blocks())

    def attach(self, index: int, attn: LayerAttention) -> None:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        return "global"


class NativeAdapter(ViTAdapter):
    """segexp's own ViTs (the UNINEXT encoder): blocks already call a LayerAttention."""

    @staticmethod
    def matches(model):
        return hasattr(model, "attention_blocks") and callable(model.attention_blocks)

    def blocks(self):
        return list(self.model.attention_blocks())

    def attach(self, index, attn):
        self.blocks()[index].set_attention(attn)

    def describe(self, index):
        return self.blocks()[index].grid_description()


def _openclip_block_forward(self, q_x, k_x=None, v_x=None, attn_mask=None):
    """Replacement forward of open_clip's ResidualAttentionBlock (batch-first [B, T, D])."""
    attn: nn.MultiheadAttention = self.attn
    y = self.ln_1(q_x)
    q, k, v = nn.functional.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    h = attn.num_heads
    grid = self._segexp_probe()
    prefix = q_x.shape[1] - grid[0] * grid[1]
    o = self.segexp_attn(_split_heads(q, h), _split_heads(k, h), _split_heads(v, h), grid, prefix, bias=attn_mask)
    o = attn.out_proj(_merge_heads(o))  # [B, T, D]
    if self.segexp_attn.reduced:
        return o
    x = q_x + self.ls_1(o)
    return x + self.ls_2(self.mlp(self.ln_2(x)))


class OpenCLIPAdapter(ViTAdapter):
    """open_clip `VisionTransformer` (or a `CLIP` holding one as `.visual`)."""

    @staticmethod
    def matches(model):
        from open_clip.transformer import VisionTransformer

        return isinstance(model, VisionTransformer) or isinstance(getattr(model, "visual", None), VisionTransformer)

    def __init__(self, model):
        super().__init__(getattr(model, "visual", model))
        if not self.model.transformer.batch_first:
            raise ValueError("segexp attention needs a batch-first open_clip transformer")

    def blocks(self):
        return list(self.model.transformer.resblocks)

    def attach(self, index, attn):
        block = self.blocks()[index]
        block.segexp_attn = attn
        block.__dict__["_segexp_probe"] = _grid_probe(self.model, self.model.conv1)
        # a partial, unlike a bound MethodType, pickles (ddp_spawn ships the model to its ranks)
        block.forward = functools.partial(_openclip_block_forward, block)


def _timm_block_forward(self, x, attn_mask=None, **kwargs):
    """Replacement forward of timm's ViT `Block` ([B, T, D], prefix tokens first)."""
    a = self.attn
    y = self.norm1(x)
    b, t, d = y.shape
    qkv = a.qkv(y).reshape(b, t, 3, a.num_heads, d // a.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # [B, heads, T, d]
    q, k = a.q_norm(q), a.k_norm(k)
    grid = self._segexp_probe()
    o = self.segexp_attn(q, k, v, grid, t - grid[0] * grid[1], bias=attn_mask)
    o = a.proj(a.norm(_merge_heads(o)) if hasattr(a, "norm") else _merge_heads(o))
    if self.segexp_attn.reduced:
        return o
    x = x + self.drop_path1(self.ls1(o))
    return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class TimmViTAdapter(ViTAdapter):
    """timm `VisionTransformer` (CLS / register prefix tokens, global attention)."""

    @staticmethod
    def matches(model):
        try:
            from timm.models.vision_transformer import VisionTransformer
        except ImportError:  # pragma: no cover - timm is a dependency
            return False
        return isinstance(model, VisionTransformer)

    def blocks(self):
        return list(self.model.blocks)

    def attach(self, index, attn):
        block = self.blocks()[index]
        block.segexp_attn = attn
        block.__dict__["_segexp_probe"] = _grid_probe(self.model, self.model.patch_embed.proj)
        # a partial, unlike a bound MethodType, pickles (ddp_spawn ships the model to its ranks)
        block.forward = functools.partial(_timm_block_forward, block)


ADAPTERS: list[type[ViTAdapter]] = [NativeAdapter, OpenCLIPAdapter, TimmViTAdapter]


def register_adapter(adapter: type[ViTAdapter], first: bool = True) -> None:
    """Make another ViT family accept `attention=` groups (SAM3 registers itself this way)."""
    if adapter not in ADAPTERS:
        ADAPTERS.insert(0 if first else len(ADAPTERS), adapter)


def adapter_for(model: nn.Module) -> ViTAdapter:
    from segexp.attention.sam3 import Sam3ViTAdapter  # registered lazily: it only matches transformers models

    register_adapter(Sam3ViTAdapter, first=False)
    for cls in ADAPTERS:
        if cls.matches(model):
            return cls(model)
    raise TypeError(f"no attention adapter for {type(model).__name__}; known: {[a.__name__ for a in ADAPTERS]}")

