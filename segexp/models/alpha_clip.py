"""Alpha-CLIP's visual tower on open_clip: CLIP's ViT plus `conv1_alpha`, added to the patch embedding.

The alpha map is the raw {0,1} region mask normalised with (0.5, 0.26) (foreground +1.923, background
-1.923), embedded by Conv2d(1, width, patch, patch, bias=False) and added to conv1's output before the
CLS token, positional embedding and ln_pre. On a plain CLIP checkpoint `conv1_alpha` starts at zero, so
the model equals CLIP exactly; Alpha-CLIP's released checkpoints (visual-only, `attn.in_proj.weight`
keys) load strictly.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from segexp import weights
from segexp.models.clip import register_model_configs, visual_embed
from segexp.models.region_align import load_clip_visual_state_dict

log = logging.getLogger(__name__)


class AlphaCLIPVisual(nn.Module):
    """(images [B,3,H,W], raw mask [B,1,H,W]) → region embedding [B,E] (= ln_post(CLS) @ proj, unnormalised)."""

    def __init__(
        self,
        model_name: str = "ViT-B-16",
        pretrained: str | None = None,
        force_quick_gelu: bool = True,
        alpha_mean: float = 0.5,
        alpha_std: float = 0.26,
        cache: bool = True,
        frozen: bool = True,
        allow_download: bool = False,
    ):
        super().__init__()
        import open_clip

        register_model_configs()
        self.visual = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=force_quick_gelu).visual
        conv1 = self.visual.conv1
        self.conv1_alpha = nn.Conv2d(1, conv1.out_channels, conv1.kernel_size, conv1.stride, bias=False)
        nn.init.zeros_(self.conv1_alpha.weight)
        self.alpha_mean, self.alpha_std = alpha_mean, alpha_std
        self.cache = cache
        self.frozen = frozen
        self.source = "random"
        visual, extras = load_clip_visual_state_dict(pretrained, model_name, "model.teacher.pretrained", allow_download)
        if visual is None:
            weights.warn_random(f"Alpha-CLIP teacher ({model_name})", self.visual)
        else:
            self.visual.load_state_dict(visual, strict=True)
            if "conv1_alpha.weight" in extras:
                self.conv1_alpha.load_state_dict({"weight": extras["conv1_alpha.weight"]}, strict=True)
                self.source = f"alpha-clip:{pretrained}"
            else:
                log.info("teacher: plain CLIP checkpoint, conv1_alpha = 0 (equals CLIP)")
                self.source = f"clip:{pretrained}"
        if frozen:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True):
        return super().train(False if self.frozen else mode)

    def normalise_alpha(self, mask01: torch.Tensor) -> torch.Tensor:
        return (mask01.float() - self.alpha_mean) / self.alpha_std

    def forward(self, images: torch.Tensor, mask01: torch.Tensor) -> torch.Tensor:
        alpha = self.conv1_alpha(self.normalise_alpha(mask01).to(images.dtype))  # [B,width,gh,gw]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            t, _ = visual_embed(self.visual, images, add=alpha)
            t = self.visual.transformer(t)
            cls = self.visual.ln_post(t[:, 0])
            return cls @ self.visual.proj
