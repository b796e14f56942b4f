"""A UNINEXT-style (ViTDet / D2ViT) plain ViT encoder that can be initialised from CLIP.

UNINEXT's backbone is detectron2's ViTDet: no CLS token, NHWC tokens inside the blocks, windowed
attention in most blocks and global attention in a few, an absolute position table whose CLS slot is
dropped, and `features["res4"]` = the last block's map in NCHW. UNINEXT only released ViT-H weights, so
"UNINEXT-style ViT-B/16" means this architecture initialised from CLIP ViT-B/16. To carry CLIP faithfully
we add CLIP's `ln_pre`, use QuickGELU and LayerNorm eps 1e-5 and drop the patch-embedding bias; CLIP's
`ln_post` and `proj` go to the alignment head (`segexp.models.region_align`). ViTDet's decomposed relative positions are zero-initialised
upstream (they add nothing at init) and are not included.

Shapes: images [B,3,H,W] → tokens [B,H/16,W/16,C] → res4 [B,C,H/16,W/16].
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segexp.attention.layer import LayerAttention
from segexp.models.layers import ACTIVATIONS


def window_partition(x: torch.Tensor, ws: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """[B,H,W,C] → [B*nW, ws, ws, C] with zero padding; returns the padded size."""
    b, h, w, c = x.shape
    ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, c), (hp, wp)


def window_unpartition(x: torch.Tensor, ws: int, padded: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """[B*nW, ws, ws, C] → [B,H,W,C]."""
    hp, wp = padded
    b = x.shape[0] // ((hp // ws) * (wp // ws))
    x = x.view(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, : size[0], : size[1]].contiguous()


class Attention(nn.Module):
    """Multi-head attention on an NHWC token map; the score function is the block's LayerAttention."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.segexp_attn = LayerAttention("vanilla")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B,h,w,C] -> [B,h,w,C]
        b, h, w, c = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, heads, h*w, d]
        o = self.segexp_attn(q, k, v, grid=(h, w), prefix=0)
        return self.proj(o.transpose(1, 2).reshape(b, h, w, c))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0, window_size=0, act="quick_gelu", ln_eps=1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, hidden))
        self.mlp.add_module("act", ACTIVATIONS[act]())
        self.mlp.add_module("fc2", nn.Linear(hidden, dim))
        self.window_size = window_size

    def set_attention(self, attn: LayerAttention) -> None:
        self.attn.segexp_attn = attn

    def grid_description(self) -> str:
        return f"window {self.window_size}x{self.window_size}" if self.window_size else "global"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B,H,W,C]
        y = self.norm1(x)
        if self.window_size:
            size = y.shape[1:3]
            y, padded = window_partition(y, self.window_size)
            y = window_unpartition(self.attn(y), self.window_size, padded, size)
        else:
            y = self.attn(y)
        if self.attn.segexp_attn.reduced and self.attn.segexp_attn.enabled:
            return y
        x = x + y
        return x + self.mlp(self.norm2(x))


class UNINEXTViT(nn.Module):
    """ViTDet-style encoder returning {"res3", "res4", "res5"} (UNINEXT's simple pyramid)."""

    def __init__(
        self,
        patch_size: int = 16,
        width: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        pretrain_grid: int = 14,
        window_size: int = 14,
        window_block_indexes: Sequence[int] = (0, 1, 3, 4, 6, 7, 9, 10),
        act: str = "quick_gelu",
        ln_eps: float = 1e-5,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.width = width
        self.patch_embed = nn.Conv2d(3, width, patch_size, patch_size, bias=False)
        # CLIP layout: [1 + g*g, C] with the CLS slot first; ViTDet drops that slot when adding.
        self.pos_embed = nn.Parameter(torch.randn(1 + pretrain_grid**2, width) * width**-0.5)
        self.ln_pre = nn.LayerNorm(width, eps=ln_eps)
        windowed = set(window_block_indexes)
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio, window_size if i in windowed else 0, act, ln_eps) for i in range(depth)
        )
        self.fpn1 = nn.ConvTranspose2d(width, width // 2, 2, 2)  # res3, stride 8
        self.fpn3 = nn.MaxPool2d(2, 2)  # res5, stride 32

    def attention_blocks(self):
        return self.blocks

    def abs_pos(self, h: int, w: int) -> torch.Tensor:  # [1, h, w, C]
        table = self.pos_embed[1:]
        g = int(round(table.shape[0] ** 0.5))
        table = table.reshape(1, g, g, -1)
        if (g, g) != (h, w):
            table = F.interpolate(table.permute(0, 3, 1, 2), size=(h, w), mode="bicubic", align_corners=False)
            table = table.permute(0, 2, 3, 1)
        return table

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:  # [B,3,H,W] -> [B,h,w,C]
        x = self.patch_embed(images).permute(0, 2, 3, 1)
        x = x + self.abs_pos(x.shape[1], x.shape[2])
        x = self.ln_pre(x)
        for blk in self.blocks:
            x = blk(x)
        return x

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.forward_tokens(images).permute(0, 3, 1, 2)  # [B,C,h,w]
        return {"res3": self.fpn1(x), "res4": x, "res5": self.fpn3(x)}


# ----------------------------------------------------------------------------------------------------------
# CLIP visual (open_clip layout, no "visual." prefix) → UNINEXT encoder keys
# ----------------------------------------------------------------------------------------------------------
_RENAMES = [
    ("conv1.weight", "patch_embed.weight"),
    ("positional_embedding", "pos_embed"),
    (".ln_1.", ".norm1."),
    (".ln_2.", ".norm2."),
    (".attn.in_proj_weight", ".attn.qkv.weight"),
    (".attn.in_proj_bias", ".attn.qkv.bias"),
    (".attn.out_proj.", ".attn.proj."),
    (".mlp.c_fc.", ".mlp.fc1."),
    (".mlp.c_proj.", ".mlp.fc2."),
    ("transformer.resblocks.", "blocks."),
]


HEAD_KEYS = ("ln_post.weight", "ln_post.bias", "proj")


def clip_visual_to_uninext(visual_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map CLIP visual keys onto `UNINEXTViT`. CLIP's `class_embedding` has no slot (ViTDet has no CLS);
    `ln_post` / `proj` belong to the alignment head and are left out."""
    out = {}
    for k, v in visual_sd.items():
        if k == "class_embedding" or k in HEAD_KEYS:
            continue
        for a, b in _RENAMES:
            k = k.replace(a, b)
        out[k] = v
    return out


def load_clip_into_uninext(encoder: UNINEXTViT, visual_sd: dict[str, torch.Tensor]) -> None:
    """Strict for every CLIP tensor; only the encoder's own FPN convs stay at their init."""
    mapped = clip_visual_to_uninext(visual_sd)
    missing, unexpected = encoder.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not k.startswith("fpn1.")]  # UNINEXT's own pyramid conv
    if missing or unexpected:
        raise ValueError(f"CLIP → UNINEXT mapping failed: missing {missing[:5]}, unexpected {unexpected[:5]}")
