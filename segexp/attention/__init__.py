"""One attention mechanism for every ViT segexp supports (see `install`).

Importing the package registers the four families' adapters: segexp's own ViTs, open_clip, timm and SAM3.
"""
from segexp.attention import native, openclip, sam3, timm_vit  # noqa: F401  (each registers its adapter)
from segexp.attention.adapter import ADAPTERS, ViTAdapter, adapter_for, register_adapter
from segexp.attention.install import install, original_attention
from segexp.attention.layer import LayerAttention
from segexp.attention.prior import clear_prior_cache, neighbour_prior
from segexp.attention.spec import Arch, AttentionSpec, LayerIndex, StrategyName
from segexp.attention.strategies import STRATEGIES

__all__ = [
    "ADAPTERS", "Arch", "AttentionSpec", "LayerAttention", "LayerIndex", "STRATEGIES", "StrategyName",
    "ViTAdapter", "adapter_for", "clear_prior_cache", "install", "neighbour_prior", "original_attention",
    "register_adapter",
]
