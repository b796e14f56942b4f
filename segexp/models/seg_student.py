"""SegStudent: a light timm backbone with a CLIP-space projection and a segmentation head.

Shapes (input [B,3,H,W], `output_stride` 16, E = CLIP embed dim, K classes):
  backbone (features_only) → stride-8 map `low` and the stride-16 maps, concatenated as `high`
  `proj`      high → F_proj [B,E,H/16,W/16]   (what the distillation losses read)
  `seg_head`  F_proj ⊕ low → logits [B,K,H/8,W/8] → bilinear to [B,K,H,W]
  `clip_proj` E → E, the global projection applied to the attention-pooled prototype Fg

The reference fed the backbone unnormalised [0,1] tensors; here the input (normalised with the DATA's
mean/std, CLIP's for segexp datasets) is re-normalised with the backbone's own `pretrained_cfg` mean/std.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segexp import weights
from open_clip.constants import OPENAI_DATASET_MEAN as CLIP_MEAN, OPENAI_DATASET_STD as CLIP_STD
from segexp.models.layers import Renormalise


def conv_bn_relu(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SegStudent(nn.Module):
    def __init__(
        self,
        num_classes: int,
        backbone: str = "efficientnet_b0",
        pretrained: bool | str | None = False,
        embed_dim: int = 512,
        out_indices: Sequence[int] = (2, 3, 4),
        output_stride: int = 16,
        low_channels: int = 48,
        decoder_channels: int = 128,
        input_mean: Sequence[float] = CLIP_MEAN,
        input_std: Sequence[float] = CLIP_STD,
    ):
        super().__init__()
        import timm

        path = weights.resolve_timm(backbone, pretrained)
        self.backbone = timm.create_model(
            backbone, features_only=True, out_indices=tuple(out_indices), output_stride=output_stride,
            pretrained=path is not None, pretrained_cfg_overlay={"file": str(path)} if path else None)
        chans, reds = self.backbone.feature_info.channels(), self.backbone.feature_info.reduction()
        self.stride = max(reds)
        self.high_idx = [i for i, r in enumerate(reds) if r == self.stride]
        self.low_idx = min(range(len(reds)), key=lambda i: reds[i])
        if self.low_idx in self.high_idx:
            raise ValueError(f"{backbone}: out_indices {tuple(out_indices)} give no map finer than stride {self.stride}")
        cfg = self.backbone.pretrained_cfg
        self.renorm = Renormalise(input_mean, input_std, cfg.get("mean", CLIP_MEAN), cfg.get("std", CLIP_STD))

        high_c = sum(chans[i] for i in self.high_idx)
        self.proj = nn.Sequential(conv_bn_relu(high_c, embed_dim), nn.Conv2d(embed_dim, embed_dim, 1))
        self.low = conv_bn_relu(chans[self.low_idx], low_channels)
        self.seg_head = nn.Sequential(conv_bn_relu(embed_dim + low_channels, decoder_channels, 3),
                                      nn.Conv2d(decoder_channels, num_classes, 1))
        self.clip_proj = nn.Linear(embed_dim, embed_dim)
        with torch.no_grad():  # identity start: Fg begins as the pooled F_proj itself
            self.clip_proj.weight.copy_(torch.eye(embed_dim))
            self.clip_proj.bias.zero_()
        self.num_classes, self.embed_dim = num_classes, embed_dim

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        backbone = list(self.backbone.parameters())
        ids = {id(p) for p in backbone}
        return {"backbone": backbone, "head": [p for p in self.parameters() if id(p) not in ids]}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x [B,3,H,W] → {"proj": F_proj [B,E,h,w], "logits": [B,K,H,W]}."""
        feats = self.backbone(self.renorm(x))
        high = torch.cat([feats[i] for i in self.high_idx], dim=1)  # [B, ΣC, H/16, W/16]
        f_proj = self.proj(high)  # [B, E, h, w]
        low = self.low(feats[self.low_idx])  # [B, 48, H/8, W/8]
        up = F.interpolate(f_proj, size=low.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.seg_head(torch.cat([up, low], dim=1))  # [B, K, H/8, W/8]
        return {"proj": f_proj, "logits": F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)}

    @staticmethod
    def text_logits(f_proj: torch.Tensor, text: torch.Tensor, scale: float, size: tuple[int, int]) -> torch.Tensor:
        """Open-vocabulary classifier: scale · cos(F_proj, text [K,E]) → [B,K,*size] (zero-shot splits)."""
        cos = torch.einsum("behw,ke->bkhw", F.normalize(f_proj, dim=1), F.normalize(text, dim=-1))
        return F.interpolate(scale * cos, size=size, mode="bilinear", align_corners=False)
