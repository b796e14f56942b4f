"""Straightforward re-implementations of the official ResCLIP and SC-CLIP per-window loops, for benchmarking only.

They follow the structure of yvhangyang/ResCLIP (clip/model.py `forward`, `create_logit_temp`, `custom_attn`,
`create_patch_matrix`, `generate_attention_sfr`, `check_path`) and SuleBai/SC-CLIP (clip/model.py `forward`,
`lof_pytorch`, `mean_interpolation`, `custom_attn`, `adaptively_aggregate`): one ViT forward per sliding-window
crop, sequence-first tensors, attention as bmm + softmax (ResCLIP: in every block, to keep the maps), the neighbour
window Ω built by convolution and cached by grid, a fresh PAMR and an uncached path check per window, LOF on the
[N, N, D] difference tensor. Same weights and numbers as segexp's path; only the execution differs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from segexp.models.clip import visual_embed
from segexp.models.naclip import slide_windows
from segexp.models.pamr import PAMR, _neighbours
from upstream_style import omega_by_convolution

_OMEGA: dict = {}


def _heads(attn, y):
    """Sequence-first y [T, B, D] → q, k, v [B·h, T, d] as upstream's custom_attn."""
    t, b, d = y.shape
    h = attn.num_heads
    q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    return [z.contiguous().view(t, b * h, d // h).transpose(0, 1) for z in (q, k, v)], (t, b, d, (d // h) ** -0.5)


def _out(attn, weights, v, shape):
    t, b, d, _ = shape
    return attn.out_proj(torch.bmm(weights, v).transpose(0, 1).contiguous().view(t, b, d))


# ---------------------------------------------------------------------------------------------- ResCLIP
class StackedPAMR(PAMR):
    """Upstream pamr.py's execution: the K shifted copies of the mask are materialised ([B, Q, K, H, W], its
    LocalAffinity convolution) and summed each iteration."""

    def forward(self, image, logits):
        alpha = self.affinity(image).unsqueeze(1)
        for _ in range(self.num_iter):
            logits = (_neighbours(logits, self.dilations) * alpha).sum(2)
        return logits


def _resclip_last(blk, x, grid, std, a_rcs, rcs_w, sfr=None, sfr_w=None):
    (q, k, v), shape = _heads(blk.attn, blk.ln_1(x))
    if grid not in _OMEGA:
        _OMEGA[grid] = omega_by_convolution(*grid, std)[None]
    w = torch.bmm(k, k.transpose(1, 2)) * shape[3]
    if sfr is not None:
        s16 = (sfr / torch.max(sfr)).to(torch.float16)
        w = sfr_w[0] * ((1 - sfr_w[1]) * w + sfr_w[1] * s16)
    w = F.softmax(w + _OMEGA[grid], dim=-1)
    w = rcs_w[0] * ((1 - rcs_w[1]) * w + rcs_w[1] * a_rcs)
    return _out(blk.attn, w, v, shape)  # wo_resi: no residual, no MLP


def _check_path(start, end, labels):
    steps = torch.max(torch.abs(end - start), dim=1)[0]
    max_steps = steps.max().item()
    t = torch.linspace(0, 1, steps=max_steps + 1).unsqueeze(1).unsqueeze(0)
    cur = (start.unsqueeze(1) * (1 - t) + end.unsqueeze(1) * t).round().long()
    valid = torch.arange(max_steps + 1).unsqueeze(0) <= steps.unsqueeze(1)
    ok = (labels[cur[:, :, 0], cur[:, :, 1]] == labels[start[:, 0], start[:, 1]].unsqueeze(1)) | ~valid
    return ok.all(dim=1)


def _sfr_attention(labels, gh, gw, std, delete_same_entity):
    n = gh * gw
    out = torch.zeros(n + 1, n + 1)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    iw, ih, jw, jh = i // gw, i % gw, j // gw, j % gw
    out[1:, 1:] = (labels[iw, ih] == labels[jw, jh]).float()
    out.diagonal().fill_(1)
    out[0], out[:, 0] = 0, 0
    s = out[1:, 1:]
    if delete_same_entity:
        start, end = torch.stack((iw, ih), -1).view(-1, 2), torch.stack((jw, jh), -1).view(-1, 2)
        valid = _check_path(start, end, labels).view(n, n)
        steps = torch.max(torch.abs(end - start), dim=1)[0]
        s = torch.where(valid, s, s * torch.exp(-steps.view(n, n) / steps.max().item()))
    k = min(n, int(6 * std + 1))
    k = k if k % 2 == 1 else k + 1
    x = torch.arange(k) - k // 2
    kern = torch.exp(-(x**2) / (2 * std**2))
    s = F.relu(F.conv1d(s.unsqueeze(1), (kern / kern.sum()).view(1, 1, -1), padding=k // 2).squeeze(1))
    out[1:, 1:] = s / (s.sum(1, keepdim=True) + 1e-8)
    return out[None]


def resclip_window(visual, crop, queries, logit_scale, spec):
    x, grid = visual_embed(visual, crop)
    x = x.transpose(0, 1)  # LND
    blocks = list(visual.transformer.resblocks)
    maps = []
    for blk in blocks[:-1]:
        (q, k, v), shape = _heads(blk.attn, blk.ln_1(x))
        w = F.softmax(torch.bmm(q * shape[3], k.transpose(1, 2)), dim=-1)
        x = x + _out(blk.attn, w, v, shape)
        x = x + blk.mlp(blk.ln_2(x))
        maps.append(w)
    a_rcs = torch.stack([maps[i] for i in spec.rcs_layers]).mean(0)
    d1 = visual.ln_post(_resclip_last(blocks[-1], x, grid, spec.std, a_rcs, spec.rcs_weights).transpose(0, 1)) @ visual.proj
    f = F.normalize(d1[:, 1:], dim=-1)
    lg = F.interpolate((f @ queries.t()).permute(0, 2, 1).reshape(1, -1, *grid), size=crop.shape[-2:], mode="bilinear",
                       align_corners=False)
    probs = torch.softmax(StackedPAMR(spec.sfr_pamr_steps, spec.sfr_pamr_dilations)(crop, lg)[0] * logit_scale, dim=0)
    pred = probs.argmax(0)
    pred[probs.max(0)[0] < spec.temp_thd] = 0
    patches = pred.unfold(0, 16, 16).unfold(1, 16, 16).reshape(*grid, -1)
    labels = torch.mode(patches, dim=-1)[0]
    sfr = _sfr_attention(labels, *grid, spec.std, spec.delete_same_entity)
    out = _resclip_last(blocks[-1], x, grid, spec.std, a_rcs, spec.rcs_weights, sfr, spec.sfr_weights)
    return visual.ln_post(out.transpose(0, 1)) @ visual.proj


# ---------------------------------------------------------------------------------------------- SC-CLIP
def _lof(x, k=30, contamination=0.05):
    d = torch.norm(x[:, None] - x[None, :], dim=2, p=2) ** 2
    kd, ki = torch.topk(d, k=k + 1, largest=False)
    kd, ki = kd[:, 1:], ki[:, 1:]
    reach = torch.max(kd, kd[:, -1].unsqueeze(1).expand_as(kd))
    lrd = k / torch.nan_to_num(reach.mean(dim=1), nan=1e-6)
    scores = (lrd[ki] / lrd.unsqueeze(1)).mean(dim=1)
    return torch.where(scores > torch.quantile(scores, 1 - contamination))[0]


def _mean_interpolation(fmap, idx):
    b, c, h, w = fmap.shape
    kernel = torch.ones(c, 1, 3, 3)
    kernel[:, 0, 1, 1] = 0
    mask = torch.ones(h, w)
    mask[idx[:, 0], idx[:, 1]] = 0
    mask = mask[None, None]
    nsum = F.conv2d(F.pad(fmap * mask, (1, 1, 1, 1)), kernel, groups=c)
    cnt = F.conv2d(F.pad(mask, (1, 1, 1, 1)), kernel[:, :1])
    safe = cnt.clone()
    safe[safe == 0] = 1
    top = torch.zeros(h, w)
    top[idx[:, 0], idx[:, 1]] = 1
    upd = top[None, None] * (cnt > 0).float()
    return fmap * (1 - upd) + nsum / safe * upd


def _scclip_attn(attn, y, mid):
    (q, k, v), shape = _heads(attn, y)
    mid = (mid - torch.mean(mid)) * 3.0
    mid[mid < 0.0] = float("-inf")
    w = F.softmax(mid.repeat(attn.num_heads, 1, 1), dim=-1) + F.softmax(torch.bmm(k, k.transpose(1, 2)) * shape[3], -1)
    return _out(attn, w / 2, v, shape)


def _aggregate(x, corr):
    return torch.matmul(corr / (corr.sum(-1, keepdim=True) + 1e-6), x.permute(1, 0, 2)).permute(1, 0, 2)


def scclip_window(visual, crop, spec):
    x, (gh, gw) = visual_embed(visual, crop)
    x = x.transpose(0, 1)
    blocks = list(visual.transformer.resblocks)
    width = x.shape[-1]
    feats = []
    for i, blk in enumerate(blocks[:-1], start=1):
        x = blk(x.transpose(0, 1)).transpose(0, 1)  # a standard CLIP block (batch-first in open_clip)
        feats.append(x)
        if i == len(blocks) - 1:
            cls = x[:1]
            out = _lof(x[1:].squeeze(1), spec.lof_neighbors, spec.lof_contamination)
            idx = torch.stack((out // gw, out % gw), -1)
            x = _mean_interpolation(x[1:].permute(1, 2, 0).reshape(1, width, gh, gw), idx).reshape(1, width, -1).permute(2, 0, 1)
    pre = _mean_interpolation(feats[spec.pre_adjust_idx][1:].permute(1, 2, 0).reshape(1, width, gh, gw), idx)
    pre = pre.reshape(1, width, -1).permute(2, 0, 1)
    pre = pre / pre.norm(dim=2, keepdim=True)
    before = torch.matmul(pre.permute(1, 0, 2), pre.permute(1, 2, 0))
    mid = before.clone()
    before[before < spec.beta] = 0.0
    x = _aggregate(x, before)
    blk = blocks[-1]
    x = _scclip_attn(blk.attn, blk.ln_1(x), mid) + spec.res_cls * cls
    post = feats[spec.post_adjust_idx][1:]
    post = post / post.norm(dim=2, keepdim=True)
    after = torch.matmul(post.permute(1, 0, 2), post.permute(1, 2, 0))
    after[after < spec.beta] = 0.0
    x = _aggregate(x, after)
    re = torch.zeros_like(feats[0])
    for i in range(spec.multi_start_idx, spec.multi_end_idx):
        re += feats[i]
    re = _aggregate(_scclip_attn(blk.attn, blk.ln_1(re[1:]), mid) + spec.res_cls * re[:1], after)
    return visual.ln_post((x + re).transpose(0, 1)) @ visual.proj


@torch.no_grad()
def official_raw_logits(window_fn, clip, queries, image, crop=224, stride=112):
    """The official segmentors' forward_slide: one window at a time, logits summed and divided by the coverage."""
    visual = clip.visual
    h, w = image.shape[-2:]
    preds = image.new_zeros(1, queries.shape[0], h, w)
    count = image.new_zeros(1, 1, h, w)
    for y1, y2, x1, x2 in slide_windows(h, w, crop, stride):
        win = image[..., y1:y2, x1:x2]
        dense = window_fn(visual, win)
        grid = ((y2 - y1) // 16, (x2 - x1) // 16)
        f = F.normalize(dense[:, 1:] if dense.shape[1] == grid[0] * grid[1] + 1 else dense, dim=-1)
        lg = (f @ queries.t()).permute(0, 2, 1).reshape(1, -1, *grid)
        preds[..., y1:y2, x1:x2] += F.interpolate(lg, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)
        count[..., y1:y2, x1:x2] += 1
    return preds / count
