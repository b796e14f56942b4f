"""CLIPTeacher: a frozen open_clip CLIP giving the global CLS embedding, dense tokens and class-text embeddings.

The dense path reuses the `attention` group: `attention=value` gives MaskCLIP's value-path tokens,
`attention=neighbour` NACLIP's, `attention=none` the plain last-layer tokens. The global embedding `Cg` is
always CLIP's own (unmodified) CLS: the trunk is shared up to the first modified block, then the CLS path
runs the blocks with their original attention (`original_attention`) and the dense path the modified ones.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segexp.attention import AttentionSpec, install, original_attention
from segexp.models.clip import create_clip, text_features, visual_embed


class CLIPTeacher(nn.Module):
    def __init__(
        self,
        clip_name: str = "ViT-B-16",
        pretrained: str | None = None,
        attention: AttentionSpec | None = None,
        templates: Sequence[str] | None = None,
        clip: nn.Module | None = None,
    ):
        super().__init__()
        self.clip = clip if clip is not None else create_clip(clip_name, pretrained, override="model.teacher.pretrained")
        self.clip.eval().requires_grad_(False)
        self.clip_name, self.source = clip_name, str(pretrained)
        self.templates = list(templates) if templates else None  # None: OpenAI's 80 ImageNet templates
        blocks = self.clip.visual.transformer.resblocks
        self.attention_report = install(self.clip.visual, attention) if attention is not None else []
        self.modified = attention.resolve_layers(len(blocks)) if attention is not None else []
        self.describe = f"{clip_name}|{pretrained}|{';'.join(self.attention_report) or 'plain'}"

    def train(self, mode: bool = True):  # frozen: never leaves eval mode
        return super().train(False)

    @property
    def embed_dim(self) -> int:
        return int(self.clip.visual.output_dim)

    def _project(self, tokens: torch.Tensor) -> torch.Tensor:
        v = self.clip.visual
        t = v.ln_post(tokens)
        return t @ v.proj if v.proj is not None else t

    @torch.no_grad()
    def encode_image_dense(self, x: torch.Tensor, dense: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [B,3,H,W] (CLIP-normalised) → (Cg [B,E] unit, dense tokens [B,E,H/p,W/p] unit, or None)."""
        blocks = list(self.clip.visual.transformer.resblocks)
        t, grid = visual_embed(self.clip.visual, x)  # [B, 1+N, width]
        first = min(self.modified, default=len(blocks))
        for blk in blocks[:first]:
            t = blk(t)
        g = t
        with original_attention(self.clip.visual):
            for blk in blocks[first:]:
                g = blk(g)
        cls = F.normalize(self._project(g[:, 0]), dim=-1)
        if not dense:
            return cls, None
        d = t
        for blk in blocks[first:]:
            d = blk(d)  # the instance's forward: the installed strategy
        d = F.normalize(self._project(d[:, 1:]), dim=-1)  # [B, N, E]
        return cls, d.transpose(1, 2).reshape(len(x), -1, *grid)

    @torch.no_grad()
    def encode_masked(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """CLS of class-masked images (C2S's local tokens): images [P,3,H,W], masks [P,H,W] bool → [P,E] unit.

        Pixels outside the mask are set to 0 in normalised space (the dataset mean colour)."""
        return self.encode_image_dense(images * masks[:, None].to(images.dtype), dense=False)[0]

    @torch.no_grad()
    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        """Template-ensembled class prompts → [len(names), E], L2-normalised."""
        import open_clip

        return text_features(self.clip, open_clip.get_tokenizer(self.clip_name), list(names), self.templates)
