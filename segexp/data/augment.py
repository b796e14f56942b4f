"""Training views of semantic datasets: random rescale, crop and horizontal flip (mmseg's train pipeline).

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
        if image.shape[-2:] != mask.shape:  # a dataset that resizes images for evaluation: back to label size
            image = F.interpolate(image[None], size=mask.shape, mode="bilinear", align_corners=False)[0]
        if self.crop_size:
            h, w = mask.shape
            f = self.crop_size * scale / min(h, w)
            size = (max(int(h * f + 0.5), 1), max(int(w * f + 0.5), 1))
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
            mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0].long()
            c = self.crop_size
            ph, pw = max(c - size[0], 0), max(c - size[1], 0)
            image = F.pad(image, (0, pw, 0, ph), value=0.0)
            mask = F.pad(mask, (0, pw, 0, ph), value=IGNORE_INDEX)
            fy, fx = corner if corner is not None else (0.5, 0.5)
            y0, x0 = int((mask.shape[0] - c) * fy), int((mask.shape[1] - c) * fx)
            image, mask = image[:, y0 : y0 + c, x0 : x0 + c], mask[y0 : y0 + c, x0 : x0 + c]
        meta = dict(item["meta"], ori_shape=list(mask.shape))
        if flip:
            image, mask = image.flip(-1), mask.flip(-1)
            meta["key"] = meta["key"] + FLIP_SUFFIX
        return dict(item, image=image.contiguous(), mask=mask.contiguous(), meta=meta)

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
