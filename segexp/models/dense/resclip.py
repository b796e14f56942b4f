"""ResCLIP (Yang et al., CVPR 2025; yvhangyang/ResCLIP) on any last-block strategy, over the shared attention mechanism.

One trunk pass: the RCS blocks show their attention maps to an observer (their running sum is kept), the last
block mixes their mean into its own attention (RCS). With SFR, the first pass's patch class map gives an affinity
that is mixed into the last block's logits, and only the last block runs again (tokens before it are kept).
"""
from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F
from torch import nn

from segexp.attention import AttentionEdit, LayerAttention, ResCLIPSpec, adapter_for, attach_layers
from segexp.models.clip import visual_embed
from segexp.models.dense.output import grid_logits, project
from segexp.models.pamr import PAMR

Tensor = torch.Tensor


def patch_modes(labels: Tensor, patch: int, num_labels: int) -> Tensor:
    """Most frequent pixel label of each patch: [B, H, W] → [B, gh, gw]; ties go to the smallest label (as
    upstream's torch.mode on CPU); pixels beyond the last whole patch are ignored."""
    b, h, w = labels.shape
    gh, gw = h // patch, w // patch
    lab = labels[:, : gh * patch, : gw * patch].reshape(b, gh, patch, gw, patch).permute(0, 1, 3, 2, 4)
    lab = lab.reshape(b, gh * gw, patch * patch)
    counts = lab.new_zeros(b, gh * gw, num_labels).scatter_add_(2, lab, torch.ones_like(lab))
    return counts.argmax(-1).reshape(b, gh, gw)  # argmax returns the first maximum


@functools.lru_cache(maxsize=8)
def _paths(gh: int, gw: int, device: torch.device):
    """For every patch pair (i, j): the patch indices upstream samples from i towards j, which of them count,
    the Chebyshev distance s and the grid's largest s. Label-independent, so cached per grid."""
    n = gh * gw
    idx = torch.arange(n, device=device)
    coords = torch.stack((idx // gw, idx % gw), -1)  # [N, 2] (row, col)
    start = coords[:, None].expand(n, n, 2).reshape(-1, 2)
    end = coords[None, :].expand(n, n, 2).reshape(-1, 2)
    steps = (end - start).abs().max(1).values  # [N²]
    s_max = int(steps.max())
    # float32 as upstream: t stops at s_max, so a pair at distance s only checks the first s/s_max of its segment
    t = torch.linspace(0, 1, s_max + 1, device=device)[None, :, None]  # [1, M, 1]
    points = (start[:, None] * (1 - t) + end[:, None] * t).round().long()  # [N², M, 2], round half to even
    counted = torch.arange(s_max + 1, device=device)[None] <= steps[:, None]  # [N², M]
    point_idx = points[..., 0] * gw + points[..., 1]
    return point_idx.view(n, n, -1), counted.view(n, n, -1), steps.view(n, n), s_max


def sfr_affinity(labels: Tensor, std: float, delete_same_entity: bool) -> Tensor:
    """SFR's affinity from patch labels [B, gh, gw] → [B, N, N], rows summing to 1 (upstream generate_attention_sfr).

    Same label → 1; with `delete_same_entity`, a same-label pair whose straight path leaves the label is decayed by
    exp(−s/s_max); then every row is blurred by a 1-D Gaussian along the row-major token index (σ = `std`)."""
    b, gh, gw = labels.shape
    lab = labels.reshape(b, -1)  # [B, N]
    n = lab.shape[1]
    same = (lab[:, :, None] == lab[:, None, :]).float()  # [B, N, N]; the diagonal is 1
    if delete_same_entity and n > 1:
        point_idx, counted, steps, s_max = _paths(gh, gw, lab.device)
        on_label = lab[:, point_idx] == lab[:, :, None, None]  # [B, N, N, M]
        valid = (on_label | ~counted).all(-1)
        same = torch.where(valid, same, same * torch.exp(-steps / s_max))
    k = min(n, int(6 * std + 1))
    k = k if k % 2 == 1 else k + 1
    x = torch.arange(k, device=lab.device) - k // 2
    kernel = torch.exp(-(x**2) / (2 * std**2))
    kernel = kernel / kernel.sum()
    blurred = F.conv1d(same.reshape(b * n, 1, n), kernel.view(1, 1, -1), padding=k // 2).reshape(b, n, n).relu()
    return blurred / (blurred.sum(-1, keepdim=True) + 1e-8)


class ResCLIPDense(nn.Module):
    """ResCLIP dense features: `forward(visual, images, queries, logit_scale) -> [B, N, E]`."""

    def __init__(self, visual: nn.Module, spec: ResCLIPSpec):
        super().__init__()
        self.spec = spec
        depth = adapter_for(visual).depth
        base = spec.last_block()
        self.last = LayerAttention(base.strategy.value, base.std, reduced=base.arch.value == "reduced",
                                   prior_scale=base.prior_scale)
        self.rcs_layers = [LayerAttention("vanilla") for _ in spec.rcs_blocks(depth)]
        self.report = attach_layers(visual, dict(zip(spec.rcs_blocks(depth), self.rcs_layers)), role="(RCS map)")
        self.report += attach_layers(visual, {depth - 1: self.last},
                                     role="+ RCS" * spec.rcs + " + SFR" * spec.sfr)
        self.pamr = PAMR(spec.sfr_pamr_steps, spec.sfr_pamr_dilations) if spec.sfr and spec.sfr_pamr_steps > 0 else None

    # ------------------------------------------------------------------ the passes
    def trunk(self, visual, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Tokens entering the last block [B, T, width] and the RCS map [B, heads, T, T] (None without RCS)."""
        tokens, _ = visual_embed(visual, images)
        adapter = adapter_for(visual)
        total: list[Tensor] = []

        def add(probs: Tensor) -> None:  # a running sum: four stored maps would be 4x the memory
            if total:
                total[0] = total[0] + probs
            else:
                total.append(probs)

        with contextlib.ExitStack() as stack:
            for layer in self.rcs_layers:
                stack.enter_context(layer.edit(AttentionEdit(observe=add)))
            tokens = adapter.run_blocks(tokens, 0, adapter.depth - 1)
        return tokens, (total[0] / len(self.rcs_layers) if total else None)

    def last_block(self, visual, tokens: Tensor, rcs_map: Tensor | None, sfr_bias: Tensor | None = None) -> Tensor:
        """The last block (with RCS / SFR) and the output head: [B, T, width] → [B, T, E]."""
        rcs = None
        if rcs_map is not None:
            tau_r, lam_r = self.spec.rcs_weights
            rcs = lambda a: tau_r * ((1 - lam_r) * a + lam_r * rcs_map)  # noqa: E731 — rows now sum to τ_r
        sfr = None
        if sfr_bias is not None:
            tau_s, lam_s = self.spec.sfr_weights
            sfr = lambda logits: tau_s * ((1 - lam_s) * logits + sfr_bias)  # noqa: E731 — Ω is added after, unscaled
        adapter = adapter_for(visual)
        with self.last.edit(AttentionEdit(logits=sfr, probs=rcs)):
            out = adapter.run_blocks(tokens, adapter.depth - 1)
        return project(visual, out)

    # ------------------------------------------------------------------ SFR
    def first_pass_probs(self, dense: Tensor, images: Tensor, queries: Tensor, logit_scale: float,
                         patch: int) -> Tensor:
        """First-pass dense features [B, T, E] → query probabilities at the image size [B, Q, H, W] (cosine logits,
        bilinear, PAMR guided by the image, softmax over the queries)."""
        grid = (images.shape[-2] // patch, images.shape[-1] // patch)
        logits = F.interpolate(grid_logits(dense[:, 1:], queries, grid), size=images.shape[-2:], mode="bilinear",
                               align_corners=False)
        if self.pamr is not None:
            logits = self.pamr(images, logits.to(images.dtype))
        return (logit_scale * logits).softmax(1)

    def patch_labels(self, probs: Tensor, patch: int) -> Tensor:
        """[B, Q, H, W] → query label of each patch [B, gh, gw] (0 where the pixel's top probability < temp_thd)."""
        conf, labels = probs.max(1)
        labels[conf < self.spec.temp_thd] = 0
        return patch_modes(labels, patch, probs.shape[1])

    def sfr_attention(self, labels: Tensor) -> Tensor:
        """Patch labels [B, gh, gw] → SFR attention [B, T, T] with a zero CLS row and column (upstream attn_sfr)."""
        aff = sfr_affinity(labels, self.spec.std, self.spec.delete_same_entity)
        n = aff.shape[-1]
        out = aff.new_zeros(len(aff), n + 1, n + 1)
        out[:, 1:, 1:] = aff
        return out

    def sfr_bias(self, attn_sfr: Tensor) -> Tensor:
        """λ_s·S added to the last block's logits [B, 1, T, T]: scaled to max 1 and rounded to float16 twice, as
        upstream does (its SFR map is a half tensor times a Python float); the heads share it."""
        lam_s = self.spec.sfr_weights[1]
        s16 = (attn_sfr / attn_sfr.amax((1, 2), keepdim=True)).half()
        return (s16.float() * lam_s).half().float()[:, None]

    # ------------------------------------------------------------------ forward
    def forward(self, visual, images: Tensor, queries: Tensor | None = None, logit_scale: float | None = None) -> Tensor:
        """images [B,3,H,W] → patch features [B, N, E] (not normalised)."""
        tokens, rcs_map = self.trunk(visual, images)
        dense = self.last_block(visual, tokens, rcs_map)
        if self.spec.sfr:
            if queries is None or queries.numel() == 0 or logit_scale is None:
                raise RuntimeError("ResCLIP's SFR classifies a first pass: give the query features and logit scale")
            patch = visual.conv1.kernel_size[0]
            labels = self.patch_labels(self.first_pass_probs(dense, images, queries, logit_scale, patch), patch)
            dense = self.last_block(visual, tokens, rcs_map, self.sfr_bias(self.sfr_attention(labels)))
        return dense[:, 1:]
