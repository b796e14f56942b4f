"""The eight NACLIP benchmark configs read their mmseg layouts from fixture trees."""
import numpy as np
import pytest
from hydra.utils import instantiate

from segexp.config import validate
from tests.conftest import compose_cfg
from tests.data.fixtures import LAYOUTS, write_tree

COUNTS = {"voc21": 21, "voc20": 20, "context60": 60, "context59": 59, "coco_object": 81, "coco_stuff": 171,
          "cityscapes": 19, "ade20k": 150}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_benchmark_layout_classes_and_labels(name, tmp_path):
    labels = write_tree(tmp_path / name, name, COUNTS[name])
    cfg = compose_cfg(["model=naclip", f"data={name}", f"data.root={tmp_path / name}"], tmp_path)
    validate(cfg)
    dm = instantiate(cfg.data)
    assert dm.num_classes == COUNTS[name]
    ds = dm.dataset("test")
    assert len(ds) == len(labels)
    s = ds[0]
    ori = labels[0].shape
    assert s["meta"]["ori_shape"] == list(ori) and s["mask"].shape == ori
    short = cfg.data.dataset.short_side
    assert min(s["image"].shape[-2:]) == short
    got = s["mask"].numpy()
    if cfg.data.dataset.reduce_zero_label:  # 0 -> ignore, c -> c-1
        assert (got[labels[0] == 0] == 255).all() and (got[labels[0] == 1] == 0).all()
    else:
        assert np.array_equal(got, labels[0].astype(np.int64))


def test_voc21_query_names_keep_synonyms(tmp_path):
    write_tree(tmp_path, "voc21", 21)
    cfg = compose_cfg(["model=naclip", "data=voc21", f"data.root={tmp_path}"], tmp_path)
    dm = instantiate(cfg.data)
    q = dm.query_names
    assert len(q) == 21 and len(q[0]) == 26 and q[15][:2] == ["person", "person in shirt"]
    assert dm.class_names[20] == "television monitor"
    assert cfg.model.segmenter.slide_crop == 0 and cfg.model.segmenter.prob_thd == 0.1  # protocol=naclip on voc21
