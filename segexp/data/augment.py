"""Training views of segmentation datasets: random rescale, crop and horizontal flip (mmseg's train pipeline),
applied to the image and to every per-pixel map of the sample alike (labels, region targets, region prompts).

A view is cacheable by a frozen teacher when a sample's pixels depend on its index alone. Random rescale
and random crops are not; a horizontal flip is, once both versions are cached (`variants`), because a ViT
teacher is not flip-equivariant (a flipped cache is not the flip of the cache).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from segexp.data.transforms import IGNORE_INDEX

FLIP_SUFFIX = ":hflip"
#: per-pixel maps of a sample that every spatial transform applies to, with the value that pads them: labels are
#: ignored outside the image, region prompts (Alpha-CLIP's alpha) are off there
MAPS = {"mask": IGNORE_INDEX, "target_mask": IGNORE_INDEX, "alpha": 0.0}


def _nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of a [..., H, W] map of any dtype."""
    lead = x.shape[:-2]
    out = F.interpolate(x.reshape(1, -1, *x.shape[-2:]).float(), size=size, mode="nearest")
    return out.reshape(*lead, *size).to(x.dtype)


class SegTrainView(Dataset):
    def __init__(self, base: Dataset, crop_size: int | None = None, scale_range: Sequence[float] | None = None,
                 hflip: bool = False):
        self.base, self.crop_size, self.hflip = base, crop_size, bool(hflip)
        self.scale_range = tuple(scale_range) if scale_range else None
        self.class_names = getattr(base, "class_names", [])
        self.name = getattr(base, "name", "dataset")

    @property
    def cacheable(self) -> bool:
        return self.scale_range is None

    def fingerprint(self) -> str:
        base = self.base.fingerprint() if hasattr(self.base, "fingerprint") else self.name
        return f"{base}-train{self.crop_size}-{self.scale_range}"

    def __len__(self) -> int:
        return len(self.base)

    def _geometry(self, item: dict, scale: float, corner: tuple[float, float] | None, flip: bool) -> dict:
        image, mask = item["image"], item["mask"]
        maps = {k: item[k] for k in MAPS if k in item}  # label / prompt maps: they move with the image
        if image.shape[-2:] != mask.shape:  # a dataset that resizes images for evaluation: back to label size
            image = F.interpolate(image[None], size=mask.shape, mode="bilinear", align_corners=False)[0]
        if self.crop_size:
            h, w = mask.shape
            f = self.crop_size * scale / min(h, w)
            size = (max(int(h * f + 0.5), 1), max(int(w * f + 0.5), 1))
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
            c = self.crop_size
            ph, pw = max(c - size[0], 0), max(c - size[1], 0)
            image = F.pad(image, (0, pw, 0, ph), value=0.0)
            maps = {k: F.pad(_nearest(v, size), (0, pw, 0, ph), value=MAPS[k]) for k, v in maps.items()}
            fy, fx = corner if corner is not None else (0.5, 0.5)
            y0, x0 = int((image.shape[-2] - c) * fy), int((image.shape[-1] - c) * fx)
            image = image[..., y0 : y0 + c, x0 : x0 + c]
            maps = {k: v[..., y0 : y0 + c, x0 : x0 + c] for k, v in maps.items()}
        meta = dict(item["meta"], ori_shape=list(maps["mask"].shape))
        if flip:
            image, maps = image.flip(-1), {k: v.flip(-1) for k, v in maps.items()}
            meta["key"] = meta["key"] + FLIP_SUFFIX
        return dict(item, image=image.contiguous(), **{k: v.contiguous() for k, v in maps.items()}, meta=meta)

    def __getitem__(self, index: int) -> dict:
        scale = float(torch.empty(()).uniform_(*self.scale_range)) if self.scale_range else 1.0
        corner = tuple(torch.rand(2).tolist()) if self.scale_range else None
        flip = self.hflip and bool(torch.rand(()) < 0.5)
        return self._geometry(self.base[index], scale, corner, flip)

    def variants(self, index: int) -> list[dict]:
        """Every version a cacheable view can return for `index` (plain and, with hflip, flipped)."""
        if not self.cacheable:
            raise RuntimeError("random rescale/crop: this view has no finite set of versions to cache")
        item = self.base[index]
        return [self._geometry(item, 1.0, None, flip) for flip in ((False, True) if self.hflip else (False,))]
