"""Text-to-image ReID losses (the seed's loss set, with the reference fork's defects corrected).

Every term has a weight; a weight of 0 skips the term entirely (it is not computed, so it is not in the graph).
* info_nce    ID-aware image↔caption InfoNCE (targets spread over same-identity pairs), learnable temperature
* sdm         IRRA's similarity distribution matching, KL(p‖q) both ways
* cls         identity CE of image and caption embeddings through one shared classifier (IRRA's ID loss)
* bio         identity image vs identity-only text (ID-aware InfoNCE)
* cloth       clothing image vs clothing text (InfoNCE; same clothing label = positive)
* cloth_adv   the adversary behind the GRL predicts the clothing text from the identity feature; it minimises
              this loss while the reversed gradient strips clothing from the identity branch
* cloth_match a matching classifier on every (clothing image, clothing text) pair of the batch with the real
              match labels (same clothing label), sigmoid BCE
* decouple    normalised HSIC (linear kernel: linear CKA) between identity and clothing features, centred
* fused       composed queries: fused(identity text, clothing text) vs image (ID-aware InfoNCE)
The learnable temperature and match bias live in this module: the ReIDModule puts them in the optimiser.
"""
from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from segexp.constraints import NonNegative, Positive

Weight = Annotated[float, NonNegative]  # a term's weight; 0 removes the term from the graph

TERMS = ("info_nce", "sdm", "cls", "bio", "cloth", "cloth_adv", "cloth_match", "decouple", "fused")


def label_targets(labels: torch.Tensor) -> torch.Tensor:
    """[B] labels → [B,B] rows summing to 1 over same-label pairs."""
    y = (labels[:, None] == labels[None, :]).float()
    return y / y.sum(1, keepdim=True)


def soft_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * logits.log_softmax(dim=1)).sum(1).mean()


def id_aware_info_nce(a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """½[CE(s·a bᵀ, T) + CE(s·b aᵀ, Tᵀ)] with T_ij ∝ [label_i = label_j]; a, b [B,D] unit vectors."""
    logits = scale * a.float() @ b.float().t()
    t = label_targets(labels)
    return 0.5 * (soft_ce(logits, t) + soft_ce(logits.t(), t))


def sdm_loss(image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, scale: float = 50.0,
             eps: float = 1e-8) -> torch.Tensor:
    """IRRA `compute_sdm`: mean_i KL(p_i ‖ q_i), image→text plus text→image (summed, as in IRRA)."""
    sim = image.float() @ text.float().t()
    q = label_targets(labels)
    loss = 0.0
    for s in (scale * sim, scale * sim.t()):
        p = s.softmax(1)
        loss = loss + (p * (s.log_softmax(1) - torch.log(q + eps))).sum(1).mean()
    return loss


def hsic_biased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """tr(K H L H)/(n−1)² with H the centring matrix (Gretton et al. 2005)."""
    n = k.shape[0]
    kc = k - k.mean(0, keepdim=True)
    lc = l - l.mean(0, keepdim=True)
    return (kc * lc.t()).sum() / (n - 1) ** 2


def rbf_gram(x: torch.Tensor) -> torch.Tensor:
    """Gaussian kernel with the median heuristic σ² = ½·median of the pairwise squared distances."""
    d2 = torch.cdist(x, x).pow(2)
    pos = d2[d2 > 0]
    sigma2 = (0.5 * pos.median()).detach() if pos.numel() else torch.tensor(1.0, device=x.device)
    return torch.exp(-d2 / (2 * sigma2.clamp_min(1e-12)))


def nhsic(x: torch.Tensor, y: torch.Tensor, kernel: str = "linear") -> torch.Tensor:
    """HSIC(X,Y)/√(HSIC(X,X)·HSIC(Y,Y)) ∈ [0,1]; with the linear kernel this is linear CKA. x [n,d1], y [n,d2]."""
    x, y = x.float(), y.float()
    if kernel == "linear":
        k, l = x @ x.t(), y @ y.t()
    elif kernel == "rbf":
        k, l = rbf_gram(x), rbf_gram(y)
    else:
        raise ValueError(f"HSIC kernel must be linear or rbf, got {kernel!r}")
    return hsic_biased(k, l) / (hsic_biased(k, k) * hsic_biased(l, l)).clamp_min(1e-12).sqrt()


class ReIDLoss(nn.Module):
    def __init__(self, info_nce: Weight = 1.0, sdm: Weight = 0.0, cls: Weight = 1.0, bio: Weight = 0.5, cloth: Weight = 0.5,
                 cloth_adv: Weight = 0.1, cloth_match: Weight = 0.5, decouple: Weight = 0.1, fused: Weight = 0.5,
                 temperature: Annotated[float, Positive] = 0.07, max_scale: Annotated[float, Positive] = 100.0,
                 sdm_scale: Annotated[float, Positive] = 50.0, hsic_kernel: str = "linear"):
        super().__init__()
        self.weights = {t: float(w) for t, w in zip(TERMS, (info_nce, sdm, cls, bio, cloth, cloth_adv, cloth_match, decouple, fused))}
        bad = [t for t, w in self.weights.items() if w < 0]
        if bad:
            raise ValueError(f"loss weights must be >= 0: {bad}")
        if hsic_kernel not in ("linear", "rbf"):
            raise ValueError(f"loss.hsic_kernel must be linear or rbf, got {hsic_kernel!r}")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))  # CLIP-style, clamped at max_scale
        self.match_bias = nn.Parameter(torch.tensor(-2.0))  # cloth_match: most pairs of a batch do not match
        self.max_log_scale, self.sdm_scale, self.hsic_kernel = math.log(max_scale), float(sdm_scale), hsic_kernel

    def active(self, term: str) -> bool:
        return self.weights[term] > 0

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=self.max_log_scale).exp()

    def forward(self, out: dict[str, torch.Tensor], labels: torch.Tensor, cloth_labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """out: T2IReIDModel outputs; labels [B] contiguous identity labels; cloth_labels [B] clothing labels."""
        s = self.scale()
        terms: dict[str, torch.Tensor] = {}
        if self.active("info_nce"):
            terms["info_nce"] = id_aware_info_nce(out["image_embeds"], out["text_embeds"], labels, s)
        if self.active("sdm"):
            terms["sdm"] = sdm_loss(out["image_embeds"], out["text_embeds"], labels, self.sdm_scale)
        if self.active("cls"):
            terms["cls"] = 0.5 * (F.cross_entropy(out["id_logits"].float(), labels)
                                  + F.cross_entropy(out["text_logits"].float(), labels))
        if self.active("bio"):
            terms["bio"] = id_aware_info_nce(out["image_embeds"], out["id_text_embeds"], labels, s)
        if self.active("cloth"):
            terms["cloth"] = id_aware_info_nce(out["cloth_image_embeds"], out["cloth_text_embeds"], cloth_labels, s)
        if self.active("cloth_adv"):
            target = out["cloth_text_embeds"].detach()  # the adversary must not move the clothing text branch
            logits = s * out["adv_cloth_embeds"].float() @ target.float().t()
            terms["cloth_adv"] = soft_ce(logits, label_targets(cloth_labels))
        if self.active("cloth_match"):
            logits = s * out["cloth_image_embeds"].float() @ out["cloth_text_embeds"].float().t() + self.match_bias
            match = (cloth_labels[:, None] == cloth_labels[None, :]).float()
            terms["cloth_match"] = F.binary_cross_entropy_with_logits(logits, match)
        if self.active("decouple"):
            terms["decouple"] = nhsic(out["id_embeds"], out["cloth_embeds"], self.hsic_kernel)
        if self.active("fused"):
            terms["fused"] = id_aware_info_nce(out["image_embeds"], out["fused_embeds"], labels, s)
        total = sum(self.weights[k] * v for k, v in terms.items())
        terms["loss_total"] = total if terms else out["image_embeds"].sum() * 0
        return terms
