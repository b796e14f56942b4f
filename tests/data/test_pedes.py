"""ReID loaders in the three official formats (fixture trees written here) and the clothing-phrase parser."""
import json

import numpy as np
import pytest
from PIL import Image

from segexp.data import PedesDataset
from segexp.data.captions import split_caption
from segexp.data.datasets import DataError

CAPTION = "A woman wearing a white shirt and black pants. She has long black hair and carries a red bag."


def write_pedes(root, name):
    """Two train identities (2 images each), one val and one test identity, in `name`'s format."""
    ann, key, offset = {"cuhk_pedes": ("reid_raw.json", "file_path", 1), "icfg_pedes": ("ICFG-PEDES.json", "file_path", 0),
                        "rstpreid": ("data_captions.json", "img_path", 0)}[name]
    records, rng = [], np.random.default_rng(0)
    splits = [("train", 10), ("train", 10), ("train", 11), ("train", 11), ("val", 20), ("test", 30), ("test", 30)]
    if name == "icfg_pedes":
        splits = [s for s in splits if s[0] != "val"]
    for n, (split, pid) in enumerate(splits):
        rel = f"{split}/{pid}_{n}.jpg"
        (root / "imgs" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(root / "imgs" / rel)
        caps = [CAPTION, f"person {pid} in a blue jacket."][: 1 if name == "icfg_pedes" else 2]
        records.append({"split": split, "captions": caps, key: rel, "id": pid + offset, "processed_tokens": []})
    (root / ann).write_text(json.dumps(records))


@pytest.mark.parametrize("name", ["cuhk_pedes", "icfg_pedes", "rstpreid"])
def test_official_splits_and_ids(tmp_path, name):
    write_pedes(tmp_path, name)
    train = PedesDataset(str(tmp_path), name, "train", image_size=(32, 16))
    caps = 1 if name == "icfg_pedes" else 2
    assert len(train) == 4 * caps and train.num_classes == 2  # one item per (image, caption); classes from the data
    item = train[0]
    assert item["image"].shape == (3, 32, 16) and item["pid"] == 10 and item["label"] == 0  # CUHK's 1-based ids shifted
    assert item["caption"] == CAPTION and item["cloth_text"] == "a white shirt, black pants, a red bag"
    test = PedesDataset(str(tmp_path), name, "test", image_size=(32, 16))
    assert len(test) == 2 and len(test[0]["captions"]) == caps  # one item per image, all its captions as queries
    if name == "icfg_pedes":
        with pytest.raises(DataError, match="no 'val' records.*splits present: test, train"):
            PedesDataset(str(tmp_path), name, "val")


def test_missing_images_fail_at_startup_with_examples(tmp_path):
    write_pedes(tmp_path, "cuhk_pedes")
    (tmp_path / "imgs" / "test" / "30_5.jpg").unlink()
    with pytest.raises(DataError, match=r"1 of 2 'test' images are missing.*test/30_5.jpg"):
        PedesDataset(str(tmp_path), "cuhk_pedes", "test")
    with pytest.raises(DataError, match="annotation file"):
        PedesDataset(str(tmp_path / "nowhere"), "rstpreid", "test")


def test_clothing_phrase_parser():
    ident, cloth = split_caption(CAPTION)
    assert cloth == "a white shirt, black pants, a red bag"
    assert ident == "A woman. She has long black hair."
    ident, cloth = split_caption("The man has short hair, he is wearing a dark blue jacket with a pair of grey jeans.")
    assert cloth == "a dark blue jacket, a pair of grey jeans" and "short hair" in ident and "jacket" not in ident
    assert split_caption("A tall man walking.") == ("A tall man walking.", "unknown clothing")
    assert split_caption("Red shoes.")[0] == "a person"
