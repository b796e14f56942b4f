"""LightningModules, one per method. Thin: they call segexp.models / losses / metrics."""
from segexp.methods.alpha_clip_align import AlphaClipAlignModule
from segexp.methods.clip_pretrain import CLIPPretrainModule
from segexp.methods.base import ConfigError, SegexpModule
from segexp.methods.distill import DistillModule
from segexp.methods.naclip import NAClipModule
from segexp.methods.open_vocab import OpenVocabSegModule
from segexp.methods.reid import ReIDModule
from segexp.methods.sam3 import Sam3Module

__all__ = ["AlphaClipAlignModule", "CLIPPretrainModule", "ConfigError", "DistillModule", "NAClipModule", "OpenVocabSegModule", "ReIDModule", "Sam3Module", "SegexpModule"]
