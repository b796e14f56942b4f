"""Image / mask conversions shared by every dataset."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN as CLIP_MEAN, OPENAI_DATASET_STD as CLIP_STD  # noqa: F401

IGNORE_INDEX = 255


def to_tensor_image(img: np.ndarray, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """uint8 [H,W,3] RGB → normalised float [3,H,W]."""
    t = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).float() / 255.0
    return (t - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def denormalise(img: torch.Tensor, mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
    """normalised [3,H,W] → uint8 [H,W,3] (for visualisation)."""
    x = img.detach().cpu().float() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    return (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def resize_short_side(img: torch.Tensor, short: int, max_long: int = 2048) -> torch.Tensor:
    """mmcv `Resize(scale=(max_long, short), keep_ratio=True)` on a [3,H,W] float image (bilinear)."""
    h, w = img.shape[-2:]
    f = min(max_long / max(h, w), short / min(h, w))
    size = (int(h * f + 0.5), int(w * f + 0.5))
    if size == (h, w):
        return img
    return F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]


def pad_square_resize(img: np.ndarray, mask: np.ndarray | None, size: int):
    """Zero-pad to a square, then resize image (bicubic) and masks (nearest) together, as Alpha-CLIP trains."""
    from PIL import Image

    h, w = img.shape[:2]
    s = max(h, w)
    canvas = np.zeros((s, s, 3), np.uint8)
    canvas[:h, :w] = img
    out = np.asarray(Image.fromarray(canvas).resize((size, size), Image.BICUBIC))
    if mask is None:
        return out, None
    mcanvas = np.full((s, s), IGNORE_INDEX if mask.dtype != bool else 0, mask.dtype if mask.dtype != bool else np.uint8)
    mcanvas[:h, :w] = mask
    mout = np.asarray(Image.fromarray(mcanvas.astype(np.uint8)).resize((size, size), Image.NEAREST))
    return out, mout
