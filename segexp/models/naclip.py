"""NACLIP's training-free open-vocabulary segmenter on open_clip, with any `attention=` option.

Pipeline (sinahmr/NACLIP `naclip.py`): dense features of each window (`segexp.models.dense`: ln_post(all tokens) @
proj with a per-block strategy, or ResCLIP's / SC-CLIP's features; CLS dropped) → L2-normalise → cosine with the
query text features → bilinear to the window size; sliding windows (crop 224, stride 112) are summed and divided by
their coverage, so averaging happens on cosine logits before the softmax. Then: bilinear to the original shape →
optional PAMR → softmax(logit_scale · L) over queries → max over each class's synonyms → (SCLIP's `area_thd`) →
argmax, with pixels whose class probability is below `prob_thd` sent to 0. `pad_to_patch` zero-pads each crop
(centred) to a multiple of the patch size and cuts the logits back (ClearCLIP). `whole_resize="direct"` resizes
whole-image logits straight from the patch grid to the original shape and `normalise_probs=False` returns the class
probabilities as they are (SC-CLIP). All windows of an image go through the ViT as one batch (chunked by
`window_batch`). Every one of these settings comes from the `protocol=` group (segexp.protocols).
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segexp.attention import AttentionSpec, ResCLIPSpec, SCCLIPSpec
from segexp.models.clip import create_clip, text_features
from segexp.models.dense import build_dense
from segexp.models.dense.output import grid_logits
from segexp.models.pamr import PAMR
from segexp.models.templates import load as load_templates
from segexp.progress import while_slow

log = logging.getLogger(__name__)


def slide_windows(h: int, w: int, crop: int, stride: int) -> list[tuple[int, int, int, int]]:
    """mmseg's sliding windows: (y1, y2, x1, x2); the last window is shifted back to end at the border."""
    ny = max(h - crop + stride - 1, 0) // stride + 1
    nx = max(w - crop + stride - 1, 0) // stride + 1
    out = []
    for iy in range(ny):
        for ix in range(nx):
            y2, x2 = min(iy * stride + crop, h), min(ix * stride + crop, w)
            out.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return out


def patch_padding(h: int, w: int, patch: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes h, w multiples of `patch`, centred, the odd pixel
    on the right / bottom (ClearCLIP's compute_padsize)."""
    lr, tb = (-w) % patch, (-h) % patch
    return lr // 2, lr - lr // 2, tb // 2, tb - tb // 2


def remove_small_classes(cls_probs: torch.Tensor, area_thd: float) -> torch.Tensor:
    """SCLIP's area threshold on class probabilities [C,h,w] (class 0 = background), in place.

    A foreground class whose argmax area is not above `area_thd` × the pixels predicted as any foreground class
    (not the image area: SCLIP's clip_segmentor.py) gets probability 0 everywhere; the background is never removed.
    """
    area = torch.bincount(cls_probs.argmax(0).flatten(), minlength=len(cls_probs))[1:].to(cls_probs.dtype)  # [C-1]
    keep = (area > area_thd * area.sum()).to(cls_probs.dtype)
    cls_probs[1:] *= keep[:, None, None]
    return cls_probs


class NACLIPSegmenter(nn.Module):
    def __init__(
        self,
        clip_name: str = "ViT-B-16",
        pretrained: str | None = None,
        attention: AttentionSpec | ResCLIPSpec | SCCLIPSpec | None = None,
        logit_scale: float = 40.0,
        prob_thd: float = 0.0,
        area_thd: float | None = None,
        slide_crop: int = 224,
        slide_stride: int = 112,
        pad_to_patch: bool = False,
        whole_resize: str = "via_input",
        normalise_probs: bool = True,
        templates: str | Sequence[str] | None = "openai80",
        pamr_steps: int = 0,
        pamr_dilations: Sequence[int] = (8, 16),
        window_batch: int = 32,
        clip: nn.Module | None = None,
        allow_download: bool = False,
    ):
        super().__init__()
        self.clip = clip if clip is not None else create_clip(clip_name, pretrained, allow_download=allow_download)
        self.clip.eval().requires_grad_(False)
        self.clip_name = clip_name
        if not hasattr(self.clip.visual, "conv1"):
            raise ValueError(
                f"{clip_name}: open_clip builds this image tower as a timm trunk ({type(self.clip.visual).__name__}, "
                f"e.g. SigLIP), pooled by attention or a head rather than a CLS token, and dense features are read "
                f"from open_clip's own VisionTransformer (its conv1 patch grid, ln_post and proj). Supported: the "
                f"open_clip ViTs (ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336, ... with OpenAI, LAION, DataComp or "
                f"MetaCLIP tags).")
        self.dense = build_dense(self.clip.visual, attention)
        self.attention_report = self.dense.report
        self.logit_scale, self.prob_thd = float(logit_scale), float(prob_thd)
        self.area_thd = None if area_thd is None else float(area_thd)
        self.slide_crop, self.slide_stride = int(slide_crop), int(slide_stride)
        self.pad_to_patch = bool(pad_to_patch)
        if whole_resize not in ("via_input", "direct"):
            raise ValueError(f"whole_resize={whole_resize!r} must be 'via_input' (patch logits to the input size, then "
                             f"to the original) or 'direct' (patch logits straight to the original size, SC-CLIP)")
        self.whole_resize, self.normalise_probs = whole_resize, bool(normalise_probs)
        load_templates(templates)  # a bad name or file fails here, not at the first set_classes
        self.templates = templates  # the spec, not open_clip's lambdas: a spawned DDP rank must unpickle the module
        self.pamr = PAMR(pamr_steps, pamr_dilations) if pamr_steps > 0 else None
        self.window_batch = int(window_batch)
        self.register_buffer("query_features", torch.zeros(0), persistent=False)
        self.query_idx: list[int] = []
        self.num_classes = 0

    # ------------------------------------------------------------------ text side
    def set_query_features(self, features: torch.Tensor, query_idx: Sequence[int]) -> None:
        """features [Q, E] unit vectors; query_idx[q] = class of query q."""
        self.query_features = F.normalize(features.float(), dim=-1).to(self.query_features.device)
        self.query_idx = [int(i) for i in query_idx]
        self.num_classes = max(self.query_idx) + 1

    @torch.no_grad()
    def set_classes(self, query_names: Sequence[Sequence[str]], templates=None) -> None:
        """query_names[c] = the names (synonyms) of class c, e.g. from a NACLIP class file."""
        import open_clip

        names = [n for syn in query_names for n in syn]
        idx = [c for c, syn in enumerate(query_names) for _ in syn]
        templates = load_templates(self.templates if templates is None else templates)
        feats = text_features(self.clip, open_clip.get_tokenizer(self.clip_name), names, templates)
        self.set_query_features(feats, idx)

    # ------------------------------------------------------------------ image side
    @torch.no_grad()
    def grid_logits(self, crops: torch.Tensor) -> torch.Tensor:
        """crops [n,3,h,w] → cosine logits on the patch grid [n,Q,gh,gw]."""
        feats = self.dense(self.clip.visual, crops, self.query_features, self.logit_scale)  # [n, N, E]
        p = self.clip.visual.conv1.kernel_size[0]
        return grid_logits(feats, self.query_features, (crops.shape[-2] // p, crops.shape[-1] // p))

    @torch.no_grad()
    def window_logits(self, crops: torch.Tensor) -> torch.Tensor:
        """crops [n,3,h,w] → cosine logits [n,Q,h,w]."""
        return F.interpolate(self.grid_logits(crops), size=crops.shape[-2:], mode="bilinear", align_corners=False)

    @torch.no_grad()
    def padded_window_logits(self, crops: torch.Tensor) -> torch.Tensor:
        """`window_logits`, with crops zero-padded to the patch grid first when `pad_to_patch` (logits cut back)."""
        h, w = crops.shape[-2:]
        pad = patch_padding(h, w, self.clip.visual.conv1.kernel_size[0]) if self.pad_to_patch else (0, 0, 0, 0)
        if not any(pad):
            return self.window_logits(crops)
        left, _, top, _ = pad
        return self.window_logits(F.pad(crops, pad))[..., top : top + h, left : left + w]

    @torch.no_grad()
    def raw_logits(self, image: torch.Tensor) -> torch.Tensor:
        """image [1,3,H,W] → [1,Q,H,W], whole-image (slide_crop=0) or sliding-window."""
        if self.slide_crop <= 0:
            return self.padded_window_logits(image)
        h, w = image.shape[-2:]
        wins = slide_windows(h, w, self.slide_crop, self.slide_stride)
        crops = torch.cat([image[..., y1:y2, x1:x2] for y1, y2, x1, x2 in wins])  # every window has one size
        starts = range(0, len(crops), self.window_batch)
        logits = torch.cat([self.padded_window_logits(crops[i : i + self.window_batch])
                            for i in while_slow(starts, f"windows of a {h}x{w} image", len(starts), "window batches")])
        total = image.new_zeros(1, logits.shape[1], h, w)
        count = image.new_zeros(1, 1, h, w)
        for (y1, y2, x1, x2), lg in zip(wins, logits):
            total[..., y1:y2, x1:x2] += lg
            count[..., y1:y2, x1:x2] += 1
        return total / count

    @torch.no_grad()
    def to_original(self, logits: torch.Tensor, image: torch.Tensor, ori_shape: Sequence[int]) -> torch.Tensor:
        """logits [1,Q,*,*] → bilinear to `ori_shape`, then PAMR (guided by the image at that size) when configured."""
        ori_shape = tuple(int(s) for s in ori_shape)
        logits = F.interpolate(logits, size=ori_shape, mode="bilinear", align_corners=False)
        if self.pamr is not None:
            guide = F.interpolate(image, size=ori_shape, mode="bilinear", align_corners=False)
            try:
                logits = self.pamr(guide, logits.to(guide.dtype))
            except RuntimeError as e:  # out of memory on huge images x many queries: say so, keep going
                log.warning("PAMR skipped for an image of %s (%s)", ori_shape, e)
        return logits

    @torch.no_grad()
    def logits(self, image: torch.Tensor, ori_shape: Sequence[int]) -> torch.Tensor:
        """image [1,3,H,W] → the logits classified at `ori_shape` [1,Q,h,w]."""
        if self.slide_crop <= 0 and self.whole_resize == "direct" and not self.pad_to_patch:
            return self.to_original(self.grid_logits(image), image, ori_shape)
        return self.to_original(self.raw_logits(image), image, ori_shape)

    @torch.no_grad()
    def classify(self, logits: torch.Tensor):
        """logits [1,Q,h,w] → (class probabilities [C,h,w], prediction [h,w] long).

        The probabilities are renormalised over the classes unless `normalise_probs=False` (SC-CLIP returns the
        max-over-synonyms probabilities, area-suppressed classes at 0)."""
        probs = (self.logit_scale * logits[0]).softmax(0)  # [Q,h,w], over queries
        idx = torch.tensor(self.query_idx, device=probs.device)[:, None, None].expand_as(probs)
        cls = probs.new_zeros(self.num_classes, *probs.shape[1:]).scatter_reduce_(0, idx, probs, "amax",
                                                                                  include_self=False)
        if self.area_thd is not None:
            remove_small_classes(cls, self.area_thd)
        conf, pred = cls.max(0)
        pred[conf < self.prob_thd] = 0
        return (cls / cls.sum(0, keepdim=True) if self.normalise_probs else cls), pred

    @torch.no_grad()
    def postprocess(self, logits: torch.Tensor, image: torch.Tensor, ori_shape: Sequence[int]):
        """logits [1,Q,H,W] at input size → (class probabilities [C,h,w], prediction [h,w] long) at `ori_shape`."""
        return self.classify(self.to_original(logits, image, ori_shape))

    @torch.no_grad()
    def forward(self, image: torch.Tensor, ori_shape: Sequence[int] | None = None):
        """image [1,3,H,W] normalised → (seg_probs [C,h,w], pred [h,w]) at `ori_shape` (default: H, W)."""
        if self.query_features.numel() == 0:
            raise RuntimeError("call set_classes() or set_query_features() before segmenting")
        return self.classify(self.logits(image, ori_shape or image.shape[-2:]))
