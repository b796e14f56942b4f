"""CLIP → student distillation losses (C2S, with the reference implementation's bugs fixed).

* global: W_attn = softmax(⟨Ĉg, F̂_l⟩ / τ_attn) over the L student tokens (unit vectors, so τ_attn is a real
  temperature; the reference divided unit-vector products by √C, which makes W_attn uniform), Fg = Σ_l W_l F_l,
  then InfoNCE(clip_proj(Fg), Cg) at τ with in-batch negatives plus a bank of past teacher CLS embeddings.
  Bank entries of the same sample are masked, so the positive is never a negative (the reference enqueued
  the current CLS before the loss).
* local: per (image, class present) pair, the student's F_proj pooled under the class mask against a teacher
  target: the teacher's dense tokens pooled under the same mask (`dense`) or the CLS of the class-masked image
  (`masked_image`, the paper's version). The contrast runs across every pair of the batch with same-class pairs
  as positives, plus a cosine term so that a batch with a single pair still gets a signal.
* ce: cross-entropy with ignore_index (255).
"""
from __future__ import annotations

import hashlib
from typing import Annotated, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segexp.constraints import NonNegative, Positive


def attention_pool(cg: torch.Tensor, f_proj: torch.Tensor, tau_attn: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cg [B,E], f_proj [B,E,L] → (W_attn [B,L], Fg [B,E]); similarities on unit vectors, pooling of raw F_proj."""
    sim = torch.einsum("bc,bcl->bl", F.normalize(cg.float(), dim=1), F.normalize(f_proj.float(), dim=1))
    w = (sim / tau_attn).softmax(dim=-1)
    return w, torch.einsum("bl,bcl->bc", w, f_proj.float())


def info_nce(query: torch.Tensor, keys: torch.Tensor, tau: float, bank: torch.Tensor | None = None,
             bank_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Row i's positive is keys[i]; negatives are the other keys and the bank rows not masked for row i.

    query, keys [B,E]; bank [K,E]; bank_mask [B,K] True where bank row k must not be a negative of row i.
    """
    q, k = F.normalize(query.float(), dim=-1), F.normalize(keys.float(), dim=-1)
    logits = q @ k.t() / tau  # [B, B]
    if bank is not None and len(bank):
        lb = q @ F.normalize(bank.float(), dim=-1).t() / tau  # [B, K]
        if bank_mask is not None:
            lb = lb.masked_fill(bank_mask, float("-inf"))
        logits = torch.cat([logits, lb], dim=1)
    return F.cross_entropy(logits, torch.arange(len(q), device=q.device))


def sample_ids(keys: Sequence[str]) -> torch.Tensor:
    """Stable int64 ids of sample keys (flip variants of one image share an id: both are its positive)."""
    return torch.tensor([int.from_bytes(hashlib.blake2b(k.split(":hflip")[0].encode(), digest_size=8).digest(), "little",
                                        signed=True) for k in keys], dtype=torch.long)


class TeacherBank(nn.Module):
    """A ring buffer of past teacher CLS embeddings with the id of the sample each came from."""

    def __init__(self, size: int, dim: int | None = None):
        super().__init__()
        self.size = int(size)
        # allocated at the first enqueue when `dim` is unknown (it is the teacher's embedding width)
        self.register_buffer("feats", torch.zeros(self.size, dim or 0), persistent=False)
        self.register_buffer("ids", torch.zeros(self.size, dtype=torch.long), persistent=False)
        self.filled = self.ptr = 0

    def negatives(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bank rows [K,E], mask [B,K]: True where the row is the query's own sample)."""
        feats, bank_ids = self.feats[: self.filled], self.ids[: self.filled]
        return feats, ids.to(bank_ids.device)[:, None] == bank_ids[None, :]

    @torch.no_grad()
    def enqueue(self, feats: torch.Tensor, ids: torch.Tensor) -> None:
        if self.filled == 0 and self.feats.shape[-1] == 0:
            self.feats = feats.new_zeros(self.size, feats.shape[-1], dtype=torch.float32)
            self.ids = self.ids.to(feats.device)
        if feats.shape[-1] != self.feats.shape[-1]:
            raise ValueError(f"bank holds {self.feats.shape[-1]}-d embeddings, got {feats.shape[-1]}-d")
        for f, i in zip(feats.detach().float(), ids):
            self.feats[self.ptr], self.ids[self.ptr] = f.to(self.feats.device), i
            self.ptr = (self.ptr + 1) % self.size
            self.filled = min(self.filled + 1, self.size)


def present_pairs(mask: torch.Tensor, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """mask [B,H,W] → [P,2] (image, class) pairs for every class present in each image."""
    valid = mask != ignore_index
    b = torch.arange(len(mask), device=mask.device)[:, None, None].expand_as(mask)[valid]
    counts = torch.bincount(b * num_classes + mask[valid], minlength=len(mask) * num_classes)
    idx = torch.nonzero(counts.view(len(mask), num_classes) > 0)
    return idx


def pair_prototypes(features: torch.Tensor, mask: torch.Tensor, pairs: torch.Tensor, num_classes: int,
                    ignore_index: int = 255) -> torch.Tensor:
    """Mean of features [B,E,h,w] under each pair's class mask (mask [B,H,W] at any resolution) → [P,E].

    Each label pixel votes for the feature cell it falls in, so a cell's weight is the fraction of its pixels
    of that class; no [B,K,H,W] one-hot is materialised.
    """
    bsz, e, h, w = features.shape
    H, W = mask.shape[-2:]
    ys = (torch.arange(H, device=mask.device) * h // H)[:, None]
    xs = (torch.arange(W, device=mask.device) * w // W)[None, :]
    cell = (ys * w + xs).expand(H, W)
    valid = mask != ignore_index
    b = torch.arange(bsz, device=mask.device)[:, None, None].expand_as(mask)
    flat = ((b * num_classes + mask.clamp(max=num_classes - 1)) * (h * w) + cell)[valid]
    weights = torch.bincount(flat, minlength=bsz * num_classes * h * w).view(bsz, num_classes, h * w).float()
    wp = weights[pairs[:, 0], pairs[:, 1]]  # [P, h*w]
    wp = wp / wp.sum(-1, keepdim=True).clamp_min(1)
    return torch.einsum("pl,pel->pe", wp, features.flatten(2).float()[pairs[:, 0]])


def local_contrast(student: torch.Tensor, teacher: torch.Tensor, classes: torch.Tensor, tau: float,
                   objective: str = "both") -> torch.Tensor:
    """student, teacher [P,E] per-pair prototypes; classes [P].

    infonce: student pair i against every teacher pair of the batch, same-class pairs being positives
    (multi-positive InfoNCE; other images' prototypes of the same class are not false negatives).
    cosine: mean (1 − cos) of matched pairs. both: their sum (the default: InfoNCE needs two classes in the
    batch, the cosine term does not).
    """
    s, t = F.normalize(student.float(), dim=-1), F.normalize(teacher.float(), dim=-1)
    zero = s.sum() * 0
    cos = (1 - (s * t).sum(-1)).mean() if len(s) else zero
    if objective == "cosine":
        return cos
    nce = zero
    if len(s) > 1:
        logits = s @ t.t() / tau  # [P, P]
        pos = classes[:, None] == classes[None, :]
        lse_all = torch.logsumexp(logits, dim=1)
        lse_pos = torch.logsumexp(logits.masked_fill(~pos, float("-inf")), dim=1)
        nce = (lse_all - lse_pos).mean()
    if objective == "infonce":
        return nce
    if objective == "both":
        return nce + cos
    raise ValueError(f"local objective must be infonce, cosine or both, got {objective!r}")


class DistillLoss(nn.Module):
    """total = w_global·loss_g + w_local·loss_l + w_ce·loss_ce; a weight of 0 skips that term entirely."""

    def __init__(self, w_global: Annotated[float, NonNegative] = 1.0, w_local: Annotated[float, NonNegative] = 1.0,
                 w_ce: Annotated[float, NonNegative] = 1.0, tau: Annotated[float, Positive] = 0.07,
                 tau_attn: Annotated[float, Positive] = 0.07, tau_local: Annotated[float, Positive] = 0.07,
                 bank_size: Annotated[int, NonNegative] = 0, local: str = "dense",
                 local_objective: str = "both", ignore_index: int = 255):
        super().__init__()
        if local not in ("dense", "masked_image"):
            raise ValueError(f"loss.local must be dense or masked_image, got {local!r}")
        if min(tau, tau_attn, tau_local) <= 0:
            raise ValueError("loss temperatures (tau, tau_attn, tau_local) must be > 0")
        self.w_global, self.w_local, self.w_ce = float(w_global), float(w_local), float(w_ce)
        self.tau, self.tau_attn, self.tau_local = float(tau), float(tau_attn), float(tau_local)
        self.local, self.local_objective, self.ignore_index = local, local_objective, int(ignore_index)
        self.bank = TeacherBank(bank_size) if bank_size > 0 else None

    @property
    def needs_teacher(self) -> bool:
        return self.w_global > 0 or self.w_local > 0

    @property
    def needs_dense(self) -> bool:
        return self.w_local > 0 and self.local == "dense"

    def global_loss(self, f_proj: torch.Tensor, cg: torch.Tensor, ids: torch.Tensor,
                    project: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        _, fg = attention_pool(cg, f_proj.flatten(2), self.tau_attn)
        bank, bank_mask = self.bank.negatives(ids) if self.bank is not None else (None, None)
        loss = info_nce(project(fg), cg, self.tau, bank, bank_mask)
        if self.bank is not None and self.training:  # after the loss: the current batch is not its own negative
            self.bank.enqueue(cg, ids)
        return loss

    def forward(self, out: dict, mask: torch.Tensor, keys: Sequence[str], teacher_cls: torch.Tensor | None = None,
                teacher_dense: torch.Tensor | None = None, local_targets: torch.Tensor | None = None,
                pairs: torch.Tensor | None = None, num_classes: int | None = None,
                project: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
                logits: torch.Tensor | None = None, ce_target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """out: the student's {"proj" [B,E,h,w], "logits" [B,K,H,W]}; mask [B,H,W] (255 ignored).

        `logits` / `ce_target` replace out["logits"] / `mask` for CE (e.g. text logits over the seen classes with
        labels in seen-class indices); `local_targets` [P,E] are
        the masked-image teacher tokens for `pairs` [P,2]. Returns the unweighted terms and `loss_total`.
        """
        f_proj = out["proj"]
        losses: dict[str, torch.Tensor] = {}
        total = f_proj.new_zeros(())
        if self.w_global > 0:
            losses["loss_g"] = self.global_loss(f_proj, teacher_cls, sample_ids(keys).to(f_proj.device), project)
            total = total + self.w_global * losses["loss_g"]
        if self.w_local > 0:
            k = num_classes or out["logits"].shape[1]
            pairs = present_pairs(mask, k, self.ignore_index) if pairs is None else pairs
            student = pair_prototypes(f_proj, mask, pairs, k, self.ignore_index)
            if self.local == "dense":
                target = pair_prototypes(teacher_dense, mask, pairs, k, self.ignore_index)
            else:
                target = local_targets
            losses["loss_l"] = local_contrast(student, target, pairs[:, 1], self.tau_local, self.local_objective)
            total = total + self.w_local * losses["loss_l"]
        if self.w_ce > 0:
            lg = out["logits"] if logits is None else logits
            target = mask if ce_target is None else ce_target
            if lg.shape[-2:] != target.shape[-2:]:
                lg = F.interpolate(lg, size=target.shape[-2:], mode="bilinear", align_corners=False)
            losses["loss_ce"] = F.cross_entropy(lg.float(), target, ignore_index=self.ignore_index)
            total = total + self.w_ce * losses["loss_ce"]
        losses["loss_total"] = total
        return losses
