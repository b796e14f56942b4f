"""Dataset base class and the synthetic datasets.

Every segmentation item is a dict: `image` [3,H,W] (normalised), `mask` [H,W] long (255 = ignore),
`meta` {id, key, path, ori_shape}, and optionally `caption`. Datasets that know their instances also
implement `instance_counts()` / `region(i, j)`, which `RegionView` turns into one sample per instance.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from segexp.data.synthetic.persons import PersonsGenerator
from segexp.data.synthetic.shapes import ShapesGenerator
from segexp.data.transforms import CLIP_MEAN, CLIP_STD, to_tensor_image

SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "predict": 3}


class DataError(RuntimeError):
    """A sample could not be read; the message names the file and the sample index."""


class LRUStore:
    """The `size` most recently used items of a procedural dataset, made on a miss by `make(key)`."""

    def __init__(self, size: int):
        self.size = int(size)
        self.items: OrderedDict = OrderedDict()

    def get(self, key, make):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = make(key)
        if self.size > 0:
            self.items[key] = value
            if len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


class SegDataset(Dataset):
    name: str = "dataset"
    class_names: list[str] = []
    requires_root: bool = False
    has_instances: bool = False

    def fingerprint(self) -> str:
        return self.name

    def instance_counts(self) -> list[int]:
        raise NotImplementedError(f"{type(self).__name__} has no instance annotations")

    def region(self, index: int, instance: int) -> dict:
        raise NotImplementedError


class SyntheticShapes(SegDataset):
    """Procedural scenes (see `ShapesGenerator`); `size` scenes per split, deterministic in `seed`."""

    name = "synthetic_shapes"
    has_instances = True
    builtin_class_names = True  # the generator names its classes

    def __init__(self, split: str = "train", size: int = 256, seed: int = 0, mean=CLIP_MEAN, std=CLIP_STD,
                 cache_scenes: int = 128, **generator):
        self.split, self.size, self.seed = split, int(size), int(seed)
        self.gen = ShapesGenerator(**generator)
        self.class_names = self.gen.class_names
        self.mean, self.std = tuple(mean), tuple(std)
        self._counts: list[int] | None = None
        # RegionView asks for a scene once per instance: keep recent scenes (about 1 MB each at 224 px)
        self._scenes = LRUStore(cache_scenes)


    def fingerprint(self) -> str:
        return f"{self.name}-{self.gen.fingerprint()}-s{self.seed}-{self.split}"

    def __len__(self) -> int:
        return self.size

    def _scene(self, index: int):
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self._scenes.get(index, lambda i: self.gen.scene(self.seed, SPLIT_CODES.get(self.split, 9), i))

    def _meta(self, index: int, suffix: str = "") -> dict:
        return {"id": f"{self.split}_{index:06d}{suffix}", "key": f"{self.fingerprint()}:{index}{suffix}",
                "path": "", "ori_shape": list(self.gen.size)}

    def __getitem__(self, index: int) -> dict:
        sc = self._scene(index)
        return {"image": to_tensor_image(sc.image, self.mean, self.std), "mask": torch.from_numpy(sc.semantic.astype(np.int64)),
                "caption": sc.caption, "meta": self._meta(index)}

    def instance_counts(self) -> list[int]:
        if self._counts is None:
            split = SPLIT_CODES.get(self.split, 9)
            self._counts = [self.gen.num_objects(self.seed, split, i) for i in range(self.size)]
        return self._counts

    def region(self, index: int, instance: int) -> dict:
        sc = self._scene(index)
        return {"image": to_tensor_image(sc.image, self.mean, self.std), "mask": torch.from_numpy(sc.semantic.astype(np.int64)),
                "instance": torch.from_numpy(sc.instances[instance]), "instance_class": sc.instance_classes[instance],
                "caption": sc.caption, "meta": self._meta(index, f"#{instance}")}


class SyntheticPersons(Dataset):
    has_identities = True  # person ids and captions: the `persons` view
    """Person-like figures; `ids` identities × `images_per_id` images. Train and test identities are disjoint."""

    name = "synthetic_persons"

    def __init__(self, split: str = "train", num_train_ids: int = 64, num_test_ids: int = 32, images_per_id: int = 4,
                 seed: int = 0, image_size=(128, 64), mean=CLIP_MEAN, std=CLIP_STD, cache_images: int = 4096):
        self.split, self.seed, self.k = split, int(seed), int(images_per_id)
        # rendering costs ~10 ms an image: keep recent renders (24 KB each at 128x64) for the next epochs
        self._renders = LRUStore(cache_images)
        first = 0 if split == "train" else num_train_ids
        n = num_train_ids if split == "train" else num_test_ids
        self.pids = list(range(first, first + n))
        self.gen = PersonsGenerator(tuple(image_size))
        self.mean, self.std = tuple(mean), tuple(std)
        # image index offset keeps val/test images of an identity different from each other
        self.offset = {"train": 0, "val": 1000, "test": 2000}.get(split, 3000)

    @property
    def num_classes(self) -> int:
        return len(self.pids)

    def __len__(self) -> int:
        return len(self.pids) * self.k

    def all_texts(self) -> list[str]:
        """Every caption, identity text and clothing text of the split (to train a tokenizer)."""
        out = []
        for index in range(len(self)):
            id_text, cloth_text = self.gen.texts(self.seed, self.pids[index // self.k], self.offset + index % self.k)
            out += [f"{id_text}, {cloth_text}", id_text, cloth_text]
        return out

    def __getitem__(self, index: int) -> dict:
        pid = self.pids[index // self.k]
        r = self._renders.get(index, lambda i: self.gen.render(self.seed, pid, self.offset + i % self.k))
        return {"image": to_tensor_image(r["image"], self.mean, self.std), "pid": pid,
                "label": index // self.k,  # contiguous identity label within the split
                "id_text": r["id_text"], "cloth_text": r["cloth_text"], "caption": f"{r['id_text']}, {r['cloth_text']}",
                "cloth_label": r["cloth_label"], "meta": {"id": f"{self.split}_{index:06d}", "key": f"persons:{self.seed}:{self.split}:{index}"}}


def alpha_from_instance(instance: np.ndarray | torch.Tensor, prompt: str, rng: np.random.Generator) -> torch.Tensor:
    """Region prompt from a bool instance mask: mask | box | eroded | noisy. Returns float {0,1} [1,H,W]."""
    m = torch.as_tensor(instance).bool()
    if prompt == "mask":
        out = m
    elif prompt == "box":
        out = torch.zeros_like(m)
        ys, xs = torch.nonzero(m, as_tuple=True)
        if len(ys):
            out[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] = True
    elif prompt == "eroded":
        out = -torch.nn.functional.max_pool2d(-m[None, None].float(), 5, 1, 2)[0, 0] > 0.5
        out = out if out.any() else m
    elif prompt == "noisy":
        flip = torch.from_numpy(rng.random(m.shape) < 0.05)
        out = m ^ flip
    else:
        raise ValueError(f"alpha_prompt must be mask, box, eroded or noisy, got {prompt!r}")
    return out.float()[None]


class RegionView(Dataset):
    """One sample per object instance: image, alpha [1,H,W] (raw {0,1} prompt), target_mask [H,W]."""

    def __init__(self, base: SegDataset, alpha_prompt: str = "mask", seed: int = 0):
        if not base.has_instances:
            raise ValueError(f"{type(base).__name__} has no instance annotations; it cannot serve region samples")
        self.base, self.alpha_prompt, self.seed = base, alpha_prompt, seed
        self.index = [(i, j) for i, n in enumerate(base.instance_counts()) for j in range(n)]
        self.class_names = base.class_names
        self.name = base.name

    def fingerprint(self) -> str:
        return f"{self.base.fingerprint()}-regions-{self.alpha_prompt}"

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        i, j = self.index[k]
        r = self.base.region(i, j)
        inst = r.pop("instance")
        target = inst.long()
        target[r["mask"] == 255] = 255  # anti-aliased borders stay ignored
        rng = np.random.default_rng([self.seed, k])
        r["alpha"] = alpha_from_instance(inst, self.alpha_prompt, rng)
        r["target_mask"] = target
        r["meta"]["key"] = f"{r['meta']['key']}:{self.alpha_prompt}"
        return r
