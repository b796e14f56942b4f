"""The synthetic datasets: deterministic, configurable, correctly labelled, and learnable."""
import numpy as np
import pytest
import torch

from segexp.data import DataModule, RegionView, SyntheticPersons, SyntheticShapes
from segexp.data.synthetic.shapes import ShapesGenerator


def test_shapes_are_deterministic_in_the_seed_and_differ_across_seeds():
    a, b, c = SyntheticShapes(size=3, seed=5), SyntheticShapes(size=3, seed=5), SyntheticShapes(size=3, seed=6)
    assert torch.equal(a[1]["image"], b[1]["image"]) and torch.equal(a[1]["mask"], b[1]["mask"])
    assert not torch.equal(a[1]["image"], c[1]["image"])


def test_shapes_labels_instances_and_caption():
    gen = ShapesGenerator(image_size=(96, 128), min_objects=2, max_objects=4)
    sc = gen.scene(0, 0, 3)
    assert sc.image.shape == (96, 128, 3) and sc.semantic.shape == (96, 128)
    labels = set(np.unique(sc.semantic)) - {0, 255}
    assert labels == set(sc.instance_classes)
    assert (sc.semantic == 255).any(), "anti-aliased borders are ignored"
    for inst, cls in zip(sc.instances, sc.instance_classes):
        inside = sc.semantic[inst]
        assert ((inside == cls) | (inside == 255)).mean() > 0.95
    for o in sc.objects:
        assert f"{o['colour']} {o['shape']}" in sc.caption
    assert gen.class_names[0] == "background" and len(gen.class_names) == 1 + 6 * 6


def test_shapes_config_errors_are_clear():
    with pytest.raises(ValueError, match="unknown shapes/colours"):
        ShapesGenerator(shapes=("hexagon",))
    with pytest.raises(ValueError, match="min_objects"):
        ShapesGenerator(min_objects=3, max_objects=2)


def test_region_view_gives_one_sample_per_instance():
    base = SyntheticShapes(size=4, seed=1)
    view = RegionView(base, "box")
    assert len(view) == sum(base.instance_counts())
    s = view[0]
    assert s["alpha"].shape == (1, 224, 224) and set(s["alpha"].unique().tolist()) <= {0.0, 1.0}
    assert set(s["target_mask"].unique().tolist()) <= {0, 1, 255}
    assert (s["alpha"][0].bool() | ~(s["target_mask"] == 1)).all(), "the box covers its instance"


def test_persons_identity_fixed_clothing_varies_and_splits_disjoint():
    tr, te = SyntheticPersons("train", 10, 5, 4, seed=0), SyntheticPersons("test", 10, 5, 4, seed=0)
    assert not set(tr.pids) & set(te.pids)
    same_id = [tr[i] for i in range(4)]
    assert len({s["id_text"] for s in same_id}) == 1
    assert len({s["cloth_text"] for s in same_id}) > 1
    assert same_id[0]["image"].shape == (3, 128, 64)


def test_persons_are_learnable_identity_loss_falls():
    torch.manual_seed(0)
    ds = SyntheticPersons("train", num_train_ids=8, images_per_id=6, seed=0, image_size=(64, 32))
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    y = torch.tensor([ds[i]["label"] for i in range(len(ds))])
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, 2, 1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 8))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_datamodule_collates_and_exposes_class_names():
    from functools import partial

    dm = DataModule(partial(SyntheticShapes, seed=0), {"train": {"size": 4}, "val": {"size": 2}}, view="regions", batch_size=3)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape[0] == 3 and batch["alpha"].shape[1:] == (1, 224, 224)
    assert isinstance(batch["meta"], list) and "key" in batch["meta"][0]
    assert dm.class_names[0] == "background"
