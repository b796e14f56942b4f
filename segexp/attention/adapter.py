"""What a ViT family shows the shared attention mechanism, and the registry of families.

An adapter knows three things about its family: the list of blocks, the token grid each block sees (the full
patch grid, or the window of a windowed block) and the number of prefix tokens. `attach` puts a
`LayerAttention` into one block through the family's own extension point where it has one (transformers'
`AttentionInterface`, timm's `attn_layer` class), so parameter names, and so state dicts, never change.
Each family module (`native`, `openclip`, `timm_vit`, `sam3`) registers its adapter when imported, which
`adapter_for` does on its first call (importing them with the package would load open_clip, timm and
transformers for every config check).
"""
from __future__ import annotations

import importlib

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


def grid_probe(owner: nn.Module, conv: nn.Module) -> GridProbe:
    """The one probe of `owner` (created on first use), kept as a plain attribute: not a submodule, not in state_dict."""
    probe = owner.__dict__.get("_segexp_grid_probe")
    if probe is None:
        probe = GridProbe(conv)
        owner.__dict__["_segexp_grid_probe"] = probe
    return probe


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # [B, T, D] -> [B, heads, T, D/heads]
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:  # [B, heads, T, d] -> [B, T, heads*d]
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def active(module: nn.Module) -> LayerAttention | None:
    """The LayerAttention a wrapped module should use now, or None to run the upstream computation."""
    attn = getattr(module, "segexp_attn", None)
    return attn if attn is not None and attn.enabled else None


def adopt(module: nn.Module, subclass: type) -> None:
    """Give an upstream module the behaviour of `subclass`, a subclass of its own class that adds no state.

    The object keeps its identity, parameters, names and hooks (so optimisers, state dicts and loaders see no
    change); what changes is only which `forward` runs.
    """
    if not isinstance(module, subclass):
        base = subclass.__mro__[1]
        if type(module) is not base:
            raise TypeError(f"segexp attention supports {base.__module__}.{base.__qualname__}, "
                            f"not {type(module).__module__}.{type(module).__qualname__}")
        module.__class__ = subclass


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

    def run_blocks(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Blocks `start:stop` on tokens [B, T, D], as the family's own forward chains them: a method that reads
        middle blocks runs the trunk once and re-runs only the blocks it changes."""
        for block in self.blocks()[start:stop]:
            x = block(x)
        return x

    def describe(self, index: int) -> str:
        return "global"


ADAPTERS: list[type[ViTAdapter]] = []
#: the families segexp ships, in matching order
BUILTIN_FAMILIES = ("segexp.attention.native", "segexp.attention.openclip", "segexp.attention.timm_vit",
                    "segexp.attention.sam3")


def register_adapter(adapter: type[ViTAdapter]) -> type[ViTAdapter]:
    """Make another ViT family accept `attention=` groups (usable as a class decorator)."""
    if adapter not in ADAPTERS:
        ADAPTERS.append(adapter)
    return adapter


def adapter_for(model: nn.Module) -> ViTAdapter:
    for family in BUILTIN_FAMILIES:
        importlib.import_module(family)  # registers it the first time, a dict lookup afterwards
    for cls in ADAPTERS:
        if cls.matches(model):
            return cls(model)
    raise TypeError(f"no attention adapter for {type(model).__name__}; known: {[a.__name__ for a in ADAPTERS]}")
