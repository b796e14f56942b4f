"""SC-CLIP (Bai et al.; SuleBai/SC-CLIP) over the shared attention mechanism.

The trunk runs once; the outputs of the blocks the spec names are kept (the multi-level sum accumulated on the
way). The last block (SC-CLIP's self-adjusting attention, no residual, no MLP) runs once on the patch tokens of
both branches stacked along the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segexp.attention import AttentionEdit, LayerAttention, SCCLIPSpec, adapter_for, attach_layers
from segexp.models.clip import visual_embed
from segexp.models.dense.anomaly import anomalies, lof_scores, repair
from segexp.models.dense.output import project

Tensor = torch.Tensor


def aggregate(tokens: Tensor, sim: Tensor) -> Tensor:
    """Row-normalised similarity [B, N, N] applied to tokens [B, N, D] (upstream adaptively_aggregate)."""
    return (sim / (sim.sum(-1, keepdim=True) + 1e-6)) @ tokens


def cosine(tokens: Tensor) -> Tensor:
    t = F.normalize(tokens, dim=-1)
    return t @ t.transpose(1, 2)


class SCCLIPDense(nn.Module):
    """SC-CLIP dense features: `forward(visual, images, queries=None, logit_scale=None) -> [B, N, E]`."""

    def __init__(self, visual: nn.Module, spec: SCCLIPSpec):
        super().__init__()
        self.spec = spec
        depth = adapter_for(visual).depth
        self.idx = spec.blocks(depth)
        self.last = LayerAttention("kk", reduced=True)
        parts = [name for name in ("repair", "aggregate", "self_adjust", "multi_level") if getattr(spec, name)]
        self.report = attach_layers(visual, {depth - 1: self.last}, role=f"(SC-CLIP: {', '.join(parts) or 'kk only'})")

    def trunk(self, visual, images: Tensor) -> tuple[dict[int, Tensor], Tensor | None, tuple[int, int]]:
        """Outputs of the named blocks {index: [B, T, width]}, the multi-level sum (or None) and the grid."""
        tokens, grid = visual_embed(visual, images)
        adapter = adapter_for(visual)
        last = adapter.depth - 2
        keep = {last, self.idx["pre_adjust_idx"], self.idx["post_adjust_idx"]}
        start, end = self.idx["multi_start_idx"], self.idx["multi_end_idx"]
        feats, multi = {}, None
        for i in range(last + 1):
            tokens = adapter.run_blocks(tokens, i, i + 1)
            if i in keep:
                feats[i] = tokens
            if self.spec.multi_level and start <= i < end:
                multi = tokens if multi is None else multi + tokens
        return feats, multi, grid

    def outliers(self, patches: Tensor) -> Tensor:
        """Anomalous patch tokens [B, N] bool of the penultimate block's patch tokens [B, N, width]."""
        return anomalies(lof_scores(patches, self.spec.lof_neighbors), self.spec.lof_contamination)

    def forward(self, visual, images: Tensor, queries=None, logit_scale=None) -> Tensor:
        """images [B,3,H,W] → patch features [B, N, E] (not normalised)."""
        spec = self.spec
        feats, multi, grid = self.trunk(visual, images)
        pen = feats[adapter_for(visual).depth - 2]
        cls, patches = pen[:, :1], pen[:, 1:]
        pre = feats[self.idx["pre_adjust_idx"]][:, 1:]
        if spec.repair:
            out = self.outliers(patches)
            patches, pre = repair(patches, out, grid), repair(pre, out, grid)
        s_mid = cosine(pre)  # [B, N, N]
        if spec.aggregate:
            patches = aggregate(patches, s_mid.masked_fill(s_mid < spec.beta, 0))
            s_post = cosine(feats[self.idx["post_adjust_idx"]][:, 1:])
            s_post = s_post.masked_fill(s_post < spec.beta, 0)
        branches, cls_terms = [patches], [cls]
        if multi is not None:
            branches.append(multi[:, 1:])
            cls_terms.append(multi[:, :1])
        n_b = len(branches)
        edit = AttentionEdit()
        if spec.self_adjust:
            z = 3.0 * (s_mid - s_mid.mean((1, 2), keepdim=True))
            adjust = z.masked_fill(z < 0, float("-inf")).softmax(-1).repeat(n_b, 1, 1)[:, None]  # [n_b·B, 1, N, N]
            edit = AttentionEdit(probs=lambda a: (adjust + a) / 2)
        adapter = adapter_for(visual)
        with self.last.edit(edit):
            out = adapter.run_blocks(torch.cat(branches), adapter.depth - 1)  # [n_b·B, N, width]
        out = out + spec.res_cls * torch.cat(cls_terms)
        if spec.aggregate:
            out = aggregate(out, s_post.repeat(n_b, 1, 1))
        x = sum(out.chunk(n_b))
        return project(visual, x)
