"""The AlphaClipAlign student: UNINEXT-style encoder + seg head + region alignment head."""
from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import nn

from segexp import weights
from segexp.models.clip import register_model_configs
from segexp.models.heads import AlignHead, SegHead
from segexp.models.uninext import UNINEXTViT, load_clip_into_uninext

log = logging.getLogger(__name__)


def clip_vision_dims(clip_name: str) -> dict:
    """Encoder shape of an open_clip model config: width, depth, heads, patch, grid, embed_dim."""
    import open_clip

    register_model_configs()
    cfg = open_clip.get_model_config(clip_name)
    if cfg is None:
        raise ValueError(f"unknown open_clip model '{clip_name}'")
    v = cfg["vision_cfg"]
    width = int(v["width"])
    return {
        "width": width,
        "depth": int(v["layers"]),
        "heads": width // int(v.get("head_width", 64)),
        "patch_size": int(v["patch_size"]),
        "grid": int(v["image_size"]) // int(v["patch_size"]),
        "mlp_ratio": float(v.get("mlp_ratio", 4.0)),
        "embed_dim": int(cfg["embed_dim"]),
    }


def load_clip_visual_state_dict(pretrained, clip_name: str, override: str, allow_download: bool = False):
    """Visual tower of a CLIP / Alpha-CLIP / timm checkpoint, open_clip keys without `visual.`; plus extras."""
    path = weights.resolve(pretrained, clip_name, override=override, allow_download=allow_download)
    if path is None:
        return None, {}
    sd, extras = weights.to_open_clip_layout(weights.read_state_dict(path))
    visual = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    log.info("read CLIP visual weights from %s (%d tensors)", path, len(visual))
    return visual, {k.replace("visual.", ""): v for k, v in extras.items()}


class RegionAlignNet(nn.Module):
    """images [B,3,H,W] + raw region mask [B,1,H,W] → res4 [B,C,h,w], seg_logits [B,1,H,W], region_embed [B,E]."""

    def __init__(
        self,
        clip_name: str = "ViT-B-16",
        pretrained: str | None = None,
        ln_post: bool = True,
        pool_threshold: float = 0.1,
        window_size: int = 14,
        window_block_indexes: Sequence[int] = (0, 1, 3, 4, 6, 7, 9, 10),
        head_channels: Sequence[int] = (256, 128, 64, 64),
        prompt_in_head: bool = True,
        allow_download: bool = False,
    ):
        super().__init__()
        d = clip_vision_dims(clip_name)
        self.encoder = UNINEXTViT(
            patch_size=d["patch_size"], width=d["width"], depth=d["depth"], heads=d["heads"],
            mlp_ratio=d["mlp_ratio"], pretrain_grid=d["grid"], window_size=window_size,
            window_block_indexes=tuple(window_block_indexes),
        )
        # UNINEXT's stride-8 pyramid conv is kept for its checkpoint format but this model reads res4 only:
        # frozen, so DDP finds no trainable parameter without a gradient
        self.encoder.fpn1.requires_grad_(False)
        visual, _ = load_clip_visual_state_dict(pretrained, clip_name, "model.net.pretrained", allow_download)
        post = nn.LayerNorm(d["width"])
        proj = torch.randn(d["width"], d["embed_dim"]) * d["width"] ** -0.5
        if visual is None:
            weights.warn_random(f"UNINEXT encoder ({clip_name} shape)", self.encoder)
        else:
            load_clip_into_uninext(self.encoder, visual)
            post.load_state_dict({"weight": visual["ln_post.weight"], "bias": visual["ln_post.bias"]})
            proj = visual["proj"]
        self.head = SegHead(d["width"], head_channels)
        # The seed's head sees the image only, so on a scene with several objects its target (one prompted
        # instance) is ambiguous. `prompt_in_head` adds a patch embedding of the raw region mask to res4
        # before the head (zero-initialised, like Alpha-CLIP's conv1_alpha); false gives the seed's head.
        self.prompt_embed = None
        if prompt_in_head:
            p = d["patch_size"]
            self.prompt_embed = nn.Conv2d(1, d["width"], p, p, bias=False)
            nn.init.zeros_(self.prompt_embed.weight)
        self.align = AlignHead(post if ln_post else None, proj, d["patch_size"], pool_threshold)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """`encoder` (CLIP-initialised trunk) vs `head` (seg head + alignment projection)."""
        head = [*self.head.parameters(), *self.align.parameters()]
        if self.prompt_embed is not None:
            head += list(self.prompt_embed.parameters())
        return {"encoder": list(self.encoder.parameters()), "head": head}

    def forward(self, images: torch.Tensor, mask01: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.encoder.forward_tokens(images)  # [B,h,w,C]
        res4 = tokens.permute(0, 3, 1, 2)  # [B,C,h,w]
        head_in = res4 if self.prompt_embed is None else res4 + self.prompt_embed(mask01.to(res4.dtype) * 2 - 1)
        return {
            "res4": res4,
            "seg_logits": self.head(head_in, images.shape[-2:]),  # [B,1,H,W]
            "region_embed": self.align(tokens, mask01),  # [B,E]
        }
