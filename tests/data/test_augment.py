"""SegTrainView (crop / rescale / flip, and which views a teacher cache may serve) and the VOC trainaug layout."""
import numpy as np
import pytest
import torch
from PIL import Image

from segexp.data import FolderSegDataset, SegTrainView, SyntheticShapes
from tests.conftest import compose_cfg


def test_flip_variants_are_cacheable_and_keyed_apart():
    base = SyntheticShapes(size=2, image_size=64)
    view = SegTrainView(base, hflip=True)
    assert view.cacheable
    plain, flipped = view.variants(1)
    assert flipped["meta"]["key"] == plain["meta"]["key"] + ":hflip"
    assert torch.equal(flipped["image"], plain["image"].flip(-1)) and torch.equal(flipped["mask"], plain["mask"].flip(-1))
    torch.manual_seed(0)
    keys = {view[1]["meta"]["key"] for _ in range(20)}
    assert keys == {plain["meta"]["key"], flipped["meta"]["key"]}


def test_random_rescale_crop_pads_with_ignore_and_is_not_cacheable():
    base = SyntheticShapes(size=1, image_size=64)
    view = SegTrainView(base, crop_size=48, scale_range=(0.5, 0.6))
    assert not view.cacheable
    item = view[0]
    assert item["image"].shape == (3, 48, 48) and item["mask"].shape == (48, 48)
    assert (item["mask"] == 255).any()  # a 64·0.55 ≈ 35 px scene padded to 48 with ignore
    with pytest.raises(RuntimeError, match="random"):
        view.variants(0)
    centre = SegTrainView(base, crop_size=32)
    assert centre.cacheable and centre[0]["image"].shape == (3, 32, 32)


def _voc_aug_tree(root):
    rng = np.random.default_rng(0)
    for sub, ids in (("SegmentationClass", ["a1", "a2"]), ("SegmentationClassAug", ["b1", "b2", "b3"])):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in ids:
            (root / "JPEGImages").mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
            Image.fromarray(np.full((40, 50), 3 if sub == "SegmentationClass" else 7, np.uint8)).save(root / sub / f"{i}.png")
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train.txt").write_text("a1\na2\n")
    (root / "ImageSets/Segmentation/aug.txt").write_text("b1\nb2\nb3\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("a1\n")


def test_trainaug_reads_two_label_folders(tmp_path):
    _voc_aug_tree(tmp_path)
    ds = FolderSegDataset(str(tmp_path), img_dir="JPEGImages", ann_dir=["SegmentationClass", "SegmentationClassAug"],
                          split_file=["ImageSets/Segmentation/train.txt", "ImageSets/Segmentation/aug.txt"], short_side=None)
    assert len(ds) == 5
    assert int(ds[0]["mask"][0, 0]) == 3 and int(ds[4]["mask"][0, 0]) == 7
    assert len(FolderSegDataset(str(tmp_path), img_dir="JPEGImages", ann_dir="SegmentationClassAug",
                                split_file="ImageSets/Segmentation/aug.txt", limit=2)) == 2


def test_voc_configs_build_the_train_view(tmp_path):
    from hydra.utils import instantiate

    _voc_aug_tree(tmp_path)
    cfg = compose_cfg(["model=distill", "data=voc", f"data.root={tmp_path}"])
    dm = instantiate(cfg.data)
    train = dm.dataset("train")
    assert len(train) == 5 and not dm.deterministic_transforms
    assert train[0]["image"].shape == (3, 512, 512) and len(dm.class_names) == 21
    toy = instantiate(compose_cfg(["model=distill", "data=voc_toy", f"data.root={tmp_path}"]).data)
    assert toy.deterministic_transforms and toy.dataset("train")[0]["image"].shape == (3, 224, 224)
    assert len(list(toy.cache_items())) == 2 * 2  # two train.txt images, plain + flipped


def test_region_samples_flip_and_crop_their_prompt_and_target_with_the_image():
    from segexp.data import RegionView

    regions = RegionView(SyntheticShapes(size=2, image_size=64), alpha_prompt="mask")
    plain, flipped = SegTrainView(regions, hflip=True).variants(0)
    for key in ("image", "mask", "alpha", "target_mask"):
        assert torch.equal(flipped[key], plain[key].flip(-1)), key
    def prompt_covers_target(item):  # the mask prompt is the instance: it equals the target off the ignored borders
        valid = item["target_mask"] != 255
        return torch.equal((item["alpha"][0] > 0)[valid], (item["target_mask"] == 1)[valid])

    assert plain["alpha"].sum() > 0 and prompt_covers_target(plain) and prompt_covers_target(flipped)
    torch.manual_seed(0)
    item = SegTrainView(regions, crop_size=48, scale_range=(0.5, 0.6))[0]
    assert item["alpha"].shape == (1, 48, 48) and item["target_mask"].shape == (48, 48)
    assert item["alpha"].dtype == plain["alpha"].dtype and item["target_mask"].dtype == plain["target_mask"].dtype
    # the 64 px scene rescaled by 0.5-0.6 to fit a 48 crop is at most 29 px: rows / columns from 30 on are padding
    for pad in (item["alpha"][0][30:], item["alpha"][0][:, 30:]):
        assert (pad == 0).all(), "the prompt is off in the padding"
    assert (item["target_mask"][30:] == 255).all() and (item["target_mask"][:, 30:] == 255).all()
    assert prompt_covers_target(item), "the prompt still covers the target"
