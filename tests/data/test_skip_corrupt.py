"""A corrupt image stops the run naming its path, or, with data.skip_corrupt=true, is skipped and counted."""
import logging

import pytest
from hydra.utils import instantiate

from segexp.data import DataError
from tests.conftest import compose_cfg
from tests.data.fixtures import write_tree

SHAPES = ((60, 90), (75, 50), (64, 64))


def _voc_with_a_corrupt_image(tmp_path, skip: bool):
    write_tree(tmp_path, "voc21", 21, shapes=SHAPES)
    bad = tmp_path / "JPEGImages" / "2008_000001.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated JPEG
    (tmp_path / "ImageSets/Segmentation/train.txt").write_text("2008_000000\n2008_000001\n2008_000002\n")
    (tmp_path / "ImageSets/Segmentation/aug.txt").write_text("")
    cfg = compose_cfg(["model=distill", "data=voc", f"data.root={tmp_path}", f"data.skip_corrupt={str(skip).lower()}",
                       "data.splits.train.ann_dir=[SegmentationClass]",
                       "data.splits.train.split_file=[ImageSets/Segmentation/train.txt]"], tmp_path)
    return instantiate(cfg.data), bad


def test_without_skip_the_error_names_the_file_and_index(tmp_path):
    dm, bad = _voc_with_a_corrupt_image(tmp_path, skip=False)
    ds = dm.dataset("test")
    assert len(ds) == 3
    with pytest.raises(DataError, match=rf"sample 1: cannot read image {bad}"):
        ds[1]


def test_skip_corrupt_drops_eval_samples_and_replaces_train_samples_with_a_count(tmp_path, caplog):
    dm, bad = _voc_with_a_corrupt_image(tmp_path, skip=True)
    with caplog.at_level(logging.WARNING, logger="segexp.data.skip_corrupt"):
        test = dm.dataset("test")
    assert len(test) == 2 and [test[i]["meta"]["id"] for i in range(2)] == ["2008_000000", "2008_000002"]
    assert "1 of 3 'test' samples are unreadable" in caplog.text and str(bad) in caplog.text
    train = dm.dataset("train")
    assert len(train) == 3  # not pre-read
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="segexp.data.skip_corrupt"):
        assert train[1]["meta"]["id"] == "2008_000002"  # the next readable sample
        train[1]
    assert train.skipped == 2 and "(2 so far in this process)" in caplog.text
