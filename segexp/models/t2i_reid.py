"""T2IReIDModel: text-to-image person ReID with an identity branch and a clothing branch.

Shapes (d_i, d_t = image / text encoder widths, E = embed_dim 256):
  image → encoder [B,d_i] → id_projection.trunk → id_embeds [B,d_i] → .reduce → z [B,E] (BN)
        → image_embeds = ẑ (unit);  id_logits = id_classifier(z)
  caption / id text → encoder [B,d_t] → text_id_projection → text_embeds / id_text_embeds [B,E] (unit)
  image feature → cloth_projection → cloth_embeds [B,d_i] → cloth_reduce → cloth_image_embeds [B,E] (unit)
  cloth text → encoder → cloth_text_projection → cloth_text_embeds [B,E] (unit)
  GRL(id_embeds) → adversary → adv_cloth_embeds [B,E] (unit): the adversary learns to predict clothing from
        identity features, the reversed gradient teaches the identity branch to drop it. The clothing branch
        itself has no GRL (it must encode clothing).
  fusion(id_text_embeds, cloth_text_embeds) → fused_embeds [B,E] (unit): composed queries
Text→image retrieval uses text_embeds (full caption, text encoder only) against image_embeds (image only).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.neg() * ctx.lam, None


class GradientReversal(nn.Module):
    """Identity forward; gradient × (−λ) backward (DANN). λ is set from outside (`dann_lambda`)."""

    def __init__(self, lam: float = 1.0):
        super().__init__()
        self.lam = float(lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GradReverse.apply(x, self.lam)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN's ramp 2/(1+e^(−γp)) − 1 for training progress p ∈ [0,1]."""
    import math

    return 2.0 / (1.0 + math.exp(-gamma * min(max(progress, 0.0), 1.0))) - 1.0


class ResidualBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class IdentityProjection(nn.Module):
    """`trunk` keeps the width (its output is `id_embeds`), `reduce` maps to E with BatchNorm (BNNeck: no ReLU after
    the last BN, or every embedding would sit in the positive orthant).

    unified: MLP d→d→d, then d→512(BN)→E(BN); residual: two residual blocks + Linear d→d, then d→E(BN)."""

    def __init__(self, variant: str, dim: int, embed_dim: int = 256, hidden: int = 512):
        super().__init__()
        if variant == "unified":
            self.trunk = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim), nn.ReLU(inplace=True))
            self.reduce = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, embed_dim), nn.BatchNorm1d(embed_dim))
        elif variant == "residual":
            self.trunk = nn.Sequential(ResidualBlock(dim), nn.ReLU(inplace=True), ResidualBlock(dim), nn.ReLU(inplace=True),
                                       nn.Linear(dim, dim))
            self.reduce = nn.Sequential(nn.Linear(dim, embed_dim), nn.BatchNorm1d(embed_dim))
        else:
            raise ValueError(f"id_projection must be unified or residual, got {variant!r}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return h, self.reduce(h)


class GatedFusion(nn.Module):
    """fused = normalise(g ⊙ a + (1−g) ⊙ b + MLP([a; b])), g = σ(W[a; b]): identity text + clothing text."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(2 * dim, dim)
        self.mix = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ab = torch.cat([a, b], dim=-1)
        g = torch.sigmoid(self.gate(ab))
        return F.normalize(g * a + (1 - g) * b + self.mix(ab), dim=-1)


class T2IReIDModel(nn.Module):
    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, num_classes: int, id_projection: str = "unified",
                 embed_dim: int = 256):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes comes from the training identities and must be >= 2, got {num_classes}")
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        di, dt = image_encoder.width, text_encoder.width
        self.id_projection = IdentityProjection(id_projection, di, embed_dim)
        self.text_id_projection = IdentityProjection(id_projection, dt, embed_dim)
        self.id_classifier = nn.Linear(embed_dim, num_classes, bias=False)
        nn.init.normal_(self.id_classifier.weight, std=0.001)
        self.cloth_projection = nn.Sequential(nn.Linear(di, di), nn.ReLU(inplace=True), nn.Linear(di, di))
        self.cloth_reduce = nn.Sequential(nn.Linear(di, embed_dim), nn.BatchNorm1d(embed_dim))
        self.cloth_text_projection = nn.Sequential(nn.Linear(dt, embed_dim), nn.BatchNorm1d(embed_dim))
        self.grl = GradientReversal()
        self.adversary = nn.Sequential(nn.Linear(di, di), nn.ReLU(inplace=True), nn.Linear(di, embed_dim))
        self.fusion = GatedFusion(embed_dim)
        self.num_classes, self.embed_dim = num_classes, embed_dim

    # ------------------------------------------------------------------ retrieval embeddings (one modality each)
    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.image_encoder(images)  # [B, d_i]
        id_embeds, z = self.id_projection(feats)
        return {"feats": feats, "id_embeds": id_embeds, "z": z, "image_embeds": F.normalize(z, dim=-1),
                "id_logits": self.id_classifier(z)}

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Queries: captions → [B,E] unit vectors, from the text encoder alone."""
        return F.normalize(self.text_id_projection(self.text_encoder(texts))[1], dim=-1)

    def compose(self, id_texts: Sequence[str], cloth_texts: Sequence[str]) -> torch.Tensor:
        """Composed queries: fusion(identity text, clothing text) → [B,E] unit vectors."""
        t = self.text_encoder(list(id_texts) + list(cloth_texts))
        n = len(id_texts)
        id_t = F.normalize(self.text_id_projection(t[:n])[1], dim=-1)
        cl_t = F.normalize(self.cloth_text_projection(t[n:]), dim=-1)
        return self.fusion(id_t, cl_t)

    # ------------------------------------------------------------------ training forward
    def forward(self, images: torch.Tensor, captions: Sequence[str], id_texts: Sequence[str],
                cloth_texts: Sequence[str]) -> dict[str, torch.Tensor]:
        img = self.encode_image(images)
        n = len(captions)
        t = self.text_encoder(list(captions) + list(id_texts) + list(cloth_texts))  # one pass: [3B, d_t]
        _, cap_z = self.text_id_projection(t[:n])
        _, id_z = self.text_id_projection(t[n : 2 * n])
        cloth_embeds = self.cloth_projection(img["feats"])
        id_text_embeds = F.normalize(id_z, dim=-1)
        cloth_text_embeds = F.normalize(self.cloth_text_projection(t[2 * n :]), dim=-1)
        return {
            "image_embeds": img["image_embeds"],
            "id_text_embeds": id_text_embeds,
            "fused_embeds": self.fusion(id_text_embeds, cloth_text_embeds),
            "id_logits": img["id_logits"],
            "id_embeds": img["id_embeds"],
            "cloth_embeds": cloth_embeds,
            "cloth_text_embeds": cloth_text_embeds,
            "cloth_image_embeds": F.normalize(self.cloth_reduce(cloth_embeds), dim=-1),
            "text_embeds": F.normalize(cap_z, dim=-1),
            "text_logits": self.id_classifier(cap_z),
            "adv_cloth_embeds": F.normalize(self.adversary(self.grl(img["id_embeds"])), dim=-1),
        }

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        enc = list(self.image_encoder.parameters()) + list(self.text_encoder.parameters())
        ids = {id(p) for p in enc}
        return {"encoder": enc, "head": [p for p in self.parameters() if id(p) not in ids]}
