"""LightningModules, one per method. Thin: they call segexp.models / losses / metrics."""
from segexp.methods.alpha_clip_align import AlphaClipAlignModule
from segexp.methods.clip_pretrain import CLIPPretrainModule
from segexp.methods.base import ConfigError, SegexpModule
from segexp.methods.naclip import NAClipModule

__all__ = ["AlphaClipAlignModule", "CLIPPretrainModule", "ConfigError", "NAClipModule", "SegexpModule"]
