"""COCO-format instance annotations (images folder + instances JSON, decoded with pycocotools)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from segexp.data.datasets import DataError, SegDataset
from segexp.data.transforms import CLIP_MEAN, CLIP_STD, pad_square_resize, to_tensor_image
from segexp.data.io import read_rgb


class CocoInstances(SegDataset):
    """One image per item; instances are the non-crowd annotations with area >= `min_area`.

    Images and masks are zero-padded to a square and resized to `image_size` together.
    """

    name = "coco_instances"
    requires_root = True
    builtin_class_names = True  # from the annotation file's categories
    layout = "ROOT/{split}2017/*.jpg and ROOT/annotations/instances_{split}2017.json"
    has_instances = True

    def __init__(self, root: str, split: str = "train", images: str = "{split}2017",
                 annotations: str = "annotations/instances_{split}2017.json", image_size: int = 224,
                 min_area: float = 64.0, mean=CLIP_MEAN, std=CLIP_STD):
        from pycocotools.coco import COCO

        self.root = Path(root)
        self.split = split
        self.image_dir = self.root / images.format(split=split)
        ann_file = self.root / annotations.format(split=split)
        if not ann_file.is_file():
            raise FileNotFoundError(f"COCO annotations not found: {ann_file}")
        with open(os.devnull, "w") as devnull:  # pycocotools prints progress to stdout
            import contextlib

            with contextlib.redirect_stdout(devnull):
                self.coco = COCO(str(ann_file))
        cats = sorted(self.coco.getCatIds())
        self.cat_to_label = {c: i + 1 for i, c in enumerate(cats)}
        self.class_names = ["background"] + [self.coco.loadCats(c)[0]["name"] for c in cats]
        self.image_ids = sorted(self.coco.getImgIds())
        self.anns = {i: [a for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=i, iscrowd=False)) if a["area"] >= min_area]
                     for i in self.image_ids}
        self.image_size, self.mean, self.std = image_size, tuple(mean), tuple(std)

    def fingerprint(self) -> str:
        return f"coco-{self.root.name}-{self.split}-{self.image_size}"

    def __len__(self) -> int:
        return len(self.image_ids)

    def instance_counts(self) -> list[int]:
        return [len(self.anns[i]) for i in self.image_ids]

    def _load(self, index: int):
        info = self.coco.loadImgs(self.image_ids[index])[0]
        path = self.image_dir / info["file_name"]
        img = read_rgb(path, index)
        sem = np.zeros(img.shape[:2], np.uint8)
        for a in self.anns[self.image_ids[index]]:
            sem[self.coco.annToMask(a).astype(bool)] = self.cat_to_label[a["category_id"]]
        return info, path, img, sem

    def __getitem__(self, index: int) -> dict:
        info, path, img, sem = self._load(index)
        img_r, sem_r = pad_square_resize(img, sem, self.image_size)
        return {"image": to_tensor_image(img_r, self.mean, self.std), "mask": torch.from_numpy(sem_r.astype(np.int64)),
                "meta": {"id": str(info["id"]), "key": f"{self.fingerprint()}:{info['id']}", "path": str(path),
                         "ori_shape": list(img.shape[:2])}}

    def region(self, index: int, instance: int) -> dict:
        info, path, img, sem = self._load(index)
        ann = self.anns[self.image_ids[index]][instance]
        inst = self.coco.annToMask(ann).astype(np.uint8)
        if inst.shape != img.shape[:2]:
            raise DataError(f"sample {index}: annotation {ann['id']} mask size {inst.shape} != image {img.shape[:2]} ({path})")
        img_r, sem_r = pad_square_resize(img, sem, self.image_size)
        _, inst_r = pad_square_resize(img, inst, self.image_size)
        return {"image": to_tensor_image(img_r, self.mean, self.std), "mask": torch.from_numpy(sem_r.astype(np.int64)),
                "instance": torch.from_numpy(inst_r == 1), "instance_class": self.cat_to_label[ann["category_id"]],
                "meta": {"id": f"{info['id']}#{ann['id']}", "key": f"{self.fingerprint()}:{info['id']}#{ann['id']}",
                         "path": str(path), "ori_shape": list(img.shape[:2])}}
