"""LightningModules, one per method. Thin: they call segexp.models / losses / metrics."""
from segexp.methods.alpha_clip_align import AlphaClipAlignModule
from segexp.methods.base import ConfigError, SegexpModule

__all__ = ["AlphaClipAlignModule", "ConfigError", "SegexpModule"]
