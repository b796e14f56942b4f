"""One attention mechanism for every ViT segexp supports (see `install`)."""
from segexp.attention.adapters import ADAPTERS, ViTAdapter, adapter_for, register_adapter
from segexp.attention.install import install, vit_depth
from segexp.attention.layer import LayerAttention
from segexp.attention.prior import clear_prior_cache, neighbour_prior
from segexp.attention.spec import Arch, AttentionSpec, LayerIndex, StrategyName
from segexp.attention.strategies import STRATEGIES

__all__ = [
    "ADAPTERS", "Arch", "AttentionSpec", "LayerAttention", "LayerIndex", "STRATEGIES", "StrategyName",
    "ViTAdapter", "adapter_for", "clear_prior_cache", "install", "neighbour_prior", "register_adapter", "vit_depth",
]
