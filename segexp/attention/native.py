"""segexp's own ViTs (the UNINEXT encoder): their blocks already call a LayerAttention."""
from __future__ import annotations

from segexp.attention.adapter import ViTAdapter, register_adapter


@register_adapter
class NativeAdapter(ViTAdapter):
    @staticmethod
    def matches(model):
        return hasattr(model, "attention_blocks") and callable(model.attention_blocks)

    def blocks(self):
        return list(self.model.attention_blocks())

    def attach(self, index, attn):
        self.blocks()[index].set_attention(attn)

    def describe(self, index):
        return self.blocks()[index].grid_description()
