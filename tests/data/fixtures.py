"""Tiny dataset trees in the mmseg-prepared layouts, written by the tests themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# data option -> (image path pattern, label path pattern, split file or None); {i} is the sample id
LAYOUTS = {
    "voc21": ("JPEGImages/{i}.jpg", "SegmentationClass/{i}.png", "ImageSets/Segmentation/val.txt"),
    "voc20": ("JPEGImages/{i}.jpg", "SegmentationClass/{i}.png", "ImageSets/Segmentation/val.txt"),
    "context60": ("JPEGImages/{i}.jpg", "SegmentationClassContext/{i}.png", "ImageSets/SegmentationContext/val.txt"),
    "context59": ("JPEGImages/{i}.jpg", "SegmentationClassContext/{i}.png", "ImageSets/SegmentationContext/val.txt"),
    "coco_object": ("images/val2017/{i}.jpg", "annotations/val2017/{i}_instanceTrainIds.png", None),
    "coco_stuff": ("images/val2017/{i}.jpg", "annotations/val2017/{i}_labelTrainIds.png", None),
    "cityscapes": ("leftImg8bit/val/lindau/{i}_leftImg8bit.png", "gtFine/val/lindau/{i}_gtFine_labelTrainIds.png", None),
    "ade20k": ("images/validation/{i}.jpg", "annotations/validation/{i}.png", None),
}


def write_tree(root: Path, name: str, num_classes: int, shapes=((60, 90), (75, 50))) -> list[np.ndarray]:
    """Images with a coloured rectangle per class region; returns the label maps written."""
    img_pat, lab_pat, split = LAYOUTS[name]
    labels, ids = [], []
    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate(shapes):
        i = f"2008_{k:06d}"
        ids.append(i)
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        lab = np.zeros((h, w), np.uint8)
        lab[h // 4: h // 2, w // 4: w // 2] = min(k + 1, num_classes - 1)
        lab[0, :] = 255
        (root / img_pat.format(i=i)).parent.mkdir(parents=True, exist_ok=True)
        (root / lab_pat.format(i=i)).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / img_pat.format(i=i))
        pal = Image.fromarray(lab, mode="P")
        pal.putpalette([v for c in range(256) for v in (c, 255 - c, (7 * c) % 256)])
        pal.save(root / lab_pat.format(i=i))
        labels.append(lab)
    if split:
        (root / split).parent.mkdir(parents=True, exist_ok=True)
        (root / split).write_text("\n".join(ids) + "\n")
    return labels
