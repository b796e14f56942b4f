"""COCO-format regions from a fixture written by the test, and unreadable-image errors."""
import json

import numpy as np
import pytest
from PIL import Image

from segexp.data import CocoInstances, DataError, RegionView


def write_coco(root, corrupt=False):
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, anns = [], []
    for i in range(2):
        img = np.full((60, 80, 3), 40 * (i + 1), np.uint8)
        img[10:30, 20:50] = (250, 10, 10)
        name = f"{i:012d}.jpg"
        Image.fromarray(img).save(root / "val2017" / name)
        images.append({"id": i + 1, "file_name": name, "height": 60, "width": 80})
        anns.append({"id": 10 + i, "image_id": i + 1, "category_id": 3, "iscrowd": 0, "area": 600.0,
                     "bbox": [20, 10, 30, 20], "segmentation": [[20, 10, 50, 10, 50, 30, 20, 30]]})
        anns.append({"id": 20 + i, "image_id": i + 1, "category_id": 7, "iscrowd": 0, "area": 100.0,
                     "bbox": [60, 40, 10, 10], "segmentation": [[60, 40, 70, 40, 70, 50, 60, 50]]})
    cats = [{"id": 3, "name": "car"}, {"id": 7, "name": "train"}]
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    if corrupt:
        (root / "val2017" / images[1]["file_name"]).write_bytes(b"not a jpeg")


def test_coco_regions_one_sample_per_instance(tmp_path):
    write_coco(tmp_path)
    ds = CocoInstances(str(tmp_path), split="val", image_size=64)
    assert ds.class_names == ["background", "car", "train"]
    view = RegionView(ds, "mask")
    assert len(view) == 4
    s = view[0]
    assert s["image"].shape == (3, 64, 64) and s["alpha"].shape == (1, 64, 64)
    frac = s["target_mask"].eq(1).float().mean().item()
    assert 0.05 < frac < 0.2  # a 30x20 box in an 80x80 padded square
    assert s["meta"]["ori_shape"] == [60, 80]


def test_corrupt_image_error_names_file_and_index(tmp_path):
    write_coco(tmp_path, corrupt=True)
    ds = CocoInstances(str(tmp_path), split="val")
    with pytest.raises(DataError, match=r"sample 1: cannot read image .*000000000001\.jpg"):
        ds[1]
