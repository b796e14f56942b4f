"""One attention mechanism for every ViT segexp supports (see `install`): segexp's own ViTs, open_clip, timm and
SAM3, each a family module whose adapter registers itself (`adapter.BUILTIN_FAMILIES`, imported on first use).
"""
from segexp.attention.adapter import ADAPTERS, ViTAdapter, adapter_for, register_adapter
from segexp.attention.install import attach_layers, install, original_attention
from segexp.attention.layer import AttentionEdit, LayerAttention
from segexp.attention.method_specs import ResCLIPSpec, SCCLIPSpec, spec_from_config
from segexp.attention.prior import clear_prior_cache, neighbour_prior
from segexp.attention.spec import Arch, AttentionSpec, LayerIndex, StrategyName
from segexp.attention.strategies import STRATEGIES

__all__ = [
    "ADAPTERS", "Arch", "AttentionEdit", "attach_layers", "AttentionSpec", "LayerAttention", "LayerIndex", "STRATEGIES", "StrategyName",
    "ResCLIPSpec", "SCCLIPSpec", "ViTAdapter", "adapter_for", "clear_prior_cache", "install", "neighbour_prior",
    "original_attention", "register_adapter", "spec_from_config",
]
