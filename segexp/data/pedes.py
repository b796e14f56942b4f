"""Text-to-image person ReID datasets in their official formats and splits (IRRA / RDE / RaSa layout).

ROOT/<imgs>/... images and one annotation file with a record per image:
  cuhk_pedes  reid_raw.json       {split: train|val|test, captions[2], file_path, id (1-based)}
  icfg_pedes  ICFG-PEDES.json     {split: train|test (no val), captions[1], file_path, id}
  rstpreid    data_captions.json  {split: train|val|test, captions[2], img_path, id}
The split comes from each record's `split` field (never re-drawn). Training yields one sample per
(image, caption) with a contiguous identity label (num_classes = number of training identities); evaluation
splits yield one sample per image with all its captions (queries: every caption; gallery: every image).
Identity and clothing texts come from `split_caption`, per (file_path, caption index).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from segexp.data.captions import split_caption
from segexp.data.datasets import DataError
from segexp.data.io import read_rgb
from segexp.data.transforms import CLIP_MEAN, CLIP_STD, to_tensor_image

FORMATS = {  # name → (annotation file, path field, id offset)
    "cuhk_pedes": ("reid_raw.json", "file_path", 1),
    "icfg_pedes": ("ICFG-PEDES.json", "file_path", 0),
    "rstpreid": ("data_captions.json", "img_path", 0),
}


class PedesDataset(Dataset):
    requires_root = True
    layout = "ROOT/<annotation json> and ROOT/imgs/<file_path> (see segexp.data.pedes)"

    has_identities = True  # person ids and captions: the `persons` view

    def __init__(self, root: str, name: str = "cuhk_pedes", split: str = "train", img_dir: str = "imgs",
                 image_size=(384, 128), mean=CLIP_MEAN, std=CLIP_STD, check_files: bool = True):
        if name not in FORMATS:
            raise ValueError(f"unknown ReID dataset {name!r}; choose from {sorted(FORMATS)}")
        ann_name, path_key, offset = FORMATS[name]
        self.root, self.name, self.split = Path(root).expanduser(), name, split
        self.img_root = self.root / img_dir
        self.image_size, self.mean, self.std = tuple(image_size), tuple(mean), tuple(std)
        ann = self.root / ann_name
        if not ann.is_file():
            raise DataError(f"{name}: annotation file {ann} not found (expected layout: {self.layout})")
        records = json.loads(ann.read_text())
        present = sorted({r.get("split", "?") for r in records})
        records = [r for r in records if r.get("split") == split]
        if not records:
            raise DataError(f"{name}: no '{split}' records in {ann} (splits present: {', '.join(present)})")
        self.paths = [r[path_key] for r in records]
        if check_files:
            missing = [p for p in self.paths if not (self.img_root / p).is_file()]
            if missing:
                raise DataError(f"{name}: {len(missing)} of {len(self.paths)} '{split}' images are missing under "
                                f"{self.img_root}, e.g. {', '.join(missing[:3])}")
        self.pids = [int(r["id"]) - offset for r in records]
        self.captions = [list(r["captions"]) for r in records]
        self.parsed = {(p, k): split_caption(c) for p, caps in zip(self.paths, self.captions) for k, c in enumerate(caps)}
        ids = sorted(set(self.pids))
        self.label_of = {pid: i for i, pid in enumerate(ids)}
        self.train = split == "train"
        # training: one item per (image, caption); evaluation: one item per image
        self.items = [(i, k) for i, caps in enumerate(self.captions) for k in range(len(caps))] if self.train else \
            [(i, -1) for i in range(len(self.paths))]

    @property
    def num_classes(self) -> int:
        return len(self.label_of)

    def all_texts(self) -> list[str]:
        return [t for caps in self.captions for t in caps] + [t for pair in self.parsed.values() for t in pair]

    def __len__(self) -> int:
        return len(self.items)

    def _image(self, i: int) -> torch.Tensor:
        from PIL import Image

        rgb = read_rgb(self.img_root / self.paths[i], i)
        h, w = self.image_size
        rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))
        return to_tensor_image(rgb, self.mean, self.std)

    def __getitem__(self, index: int) -> dict:
        i, k = self.items[index]
        pid = self.pids[i]
        out = {"image": self._image(i), "pid": pid, "label": self.label_of[pid], "cloth_label": pid,
               "meta": {"id": self.paths[i], "key": f"{self.name}:{self.paths[i]}"}}
        if k >= 0:
            out["caption"] = self.captions[i][k]
            out["id_text"], out["cloth_text"] = self.parsed[(self.paths[i], k)]
        else:
            out["captions"] = self.captions[i]
            parsed = [self.parsed[(self.paths[i], j)] for j in range(len(self.captions[i]))]
            out["id_texts"], out["cloth_texts"] = [p[0] for p in parsed], [p[1] for p in parsed]
        return out
