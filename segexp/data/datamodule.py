"""One LightningDataModule for every dataset and method.

`dataset` is a partial dataset class (from config); it is called once per split with that split's
kwargs. `view` chooses what the method consumes: `semantic` (image + mask), `regions` (one sample per
object instance, for region-prompted methods) or `persons` (ReID samples). The evaluation protocol of a
benchmark (resize, normalisation, class-name variant) reaches the data configs through `${protocol:...}`
(segexp.protocols), not through the datamodule.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, Sequence

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from segexp.constraints import NonNegative, Positive
from segexp.data.datasets import RegionView
from segexp.data.samplers import EpochShuffleSampler, SeedWorker
from segexp.data.skip_corrupt import SkipCorrupt

VIEWS = ("semantic", "regions", "persons")


def collate(items: list[dict]) -> dict:
    """Stack tensors of equal shape, keep everything else (meta, captions, odd-sized images) as lists."""
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if isinstance(vals[0], torch.Tensor) and all(v.shape == vals[0].shape for v in vals):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], (int, float)) and not isinstance(vals[0], bool):
            out[key] = torch.tensor(vals)
        else:
            out[key] = vals
    return out


class DataModule(L.LightningDataModule):
    def __init__(
        self,
        dataset: Callable[..., Dataset],
        splits: Mapping[str, Mapping[str, Any]],
        view: str = "semantic",
        alpha_prompt: str = "mask",
        root: str | None = None,
        batch_size: Annotated[int, Positive] = 8,
        eval_batch_size: Annotated[int, Positive] | None = None,
        num_workers: Annotated[int, NonNegative] = 0,
        seed: int = 0,
        class_file: str | None = None,
        class_names: Sequence[str] | None = None,
        background: str | None = None,
        shuffle: bool = True,
        layout: str | None = None,
        val_splits: Sequence[str] = ("val",),
        train_view: Callable[[Dataset], Dataset] | None = None,
        skip_corrupt: bool = False,
    ):
        super().__init__()
        if view not in VIEWS:
            raise ValueError(f"data.view must be one of {VIEWS}, got {view!r}")
        self.dataset_fn, self.splits = dataset, {k: dict(v or {}) for k, v in splits.items()}
        self.view, self.alpha_prompt, self.root = view, alpha_prompt, root
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.seed, self.shuffle = num_workers, seed, shuffle
        self.class_file = class_file
        # words in: `[cat, dog|puppy]` (synonyms with |), after a background class made of `background`'s words (a|b)
        self.class_list = [str(c) for c in class_names] if class_names else None
        self.background = None if background in (None, "", "none") else str(background)
        self.val_splits = list(val_splits)  # several: val_dataloader returns one loader per split
        self.layout = layout  # the files a real dataset expects under `root` (for error messages and docs)
        self.train_view = train_view  # e.g. a partial SegTrainView: random rescale / crop / flip for `train`
        self.skip_corrupt = skip_corrupt  # skip unreadable samples with a counted warning (see skip_corrupt.py)
        self._datasets: dict[str, Dataset] = {}

    @classmethod
    def has_class_names(cls, node) -> bool:
        """Whether a data config names its classes (a list, a file, or a dataset that knows its own)."""
        from hydra.utils import get_object

        return bool(node.get("class_names") or node.get("class_file") or (node.get("dataset") or {}).get("class_names")
                    or getattr(get_object(node.dataset._target_), "builtin_class_names", False))

    @classmethod
    def check_config(cls, node, cfg) -> None:
        """Before anything is built: a known view, and an existing root for datasets that read files."""
        from hydra.utils import get_object

        from segexp.config import check_root
        from segexp.errors import ConfigError

        if node.get("view") not in VIEWS:
            raise ConfigError(f"data.view={node.get('view')!r} is not one of {', '.join(VIEWS)}.")
        target = node.dataset._target_
        ds_cls = get_object(target)
        if node.get("view") == "regions" and not getattr(ds_cls, "has_instances", False):
            raise ConfigError(f"data.view=regions needs instance annotations, which {target} does not have "
                              f"(the chosen model consumes one sample per object; pick data=synthetic_shapes or coco_regions).")
        if node.get("view") == "persons" and not getattr(ds_cls, "has_identities", False):
            raise ConfigError(f"data.view=persons needs person identities and captions, which {target} does not have "
                              f"(the chosen model is a person ReID model; pick data=synthetic_persons, cuhk_pedes, "
                              f"icfg_pedes or rstpreid).")
        if getattr(ds_cls, "requires_root", False):
            check_root(node.get("root"), target, node.get("layout") or getattr(ds_cls, "layout", "see the dataset's docstring"))
        _check_class_names(node)
        if hasattr(ds_cls, "check_files") and node.get("root"):
            ds_cls.check_files(node.root, node.dataset)

    @property
    def deterministic_transforms(self) -> bool:
        """True when a sample's tensors depend on its index only (teacher caches are then valid)."""
        if "train" not in self.splits:
            return True
        return bool(getattr(self.dataset("train"), "cacheable", True))

    def cache_items(self, split: str = "train"):
        """Every version of every sample of `split` a cacheable teacher must see (flipped copies included)."""
        ds = self.dataset(split)
        for i in range(len(ds)):
            yield from (ds.variants(i) if hasattr(ds, "variants") else [ds[i]])

    # ------------------------------------------------------------------ datasets
    def dataset(self, split: str) -> Dataset:
        if split not in self._datasets:
            if split not in self.splits:
                raise KeyError(f"this data config has no '{split}' split (has: {sorted(self.splits)})")
            kwargs = dict(self.splits[split])
            if self.root is not None:
                kwargs.setdefault("root", self.root)
            ds = self.dataset_fn(**kwargs)
            if self.view == "regions":
                ds = RegionView(ds, self.alpha_prompt, self.seed)
            if split == "train" and self.train_view is not None:
                ds = self.train_view(ds)
            if self.skip_corrupt:
                ds = SkipCorrupt(ds, split, prescan=split != "train")
            self._datasets[split] = ds
        return self._datasets[split]

    @property
    def class_names(self) -> list[str]:
        """Display names: the first query word of each class (the background's name for class 0)."""
        if self.class_list or self.class_file:
            names = [words[0] for words in self.query_names]
            if self.background and names:  # NACLIP's files query the background with stuff words ("sky, wall...")
                names[0] = self.background.split("|")[0]
            return names
        first = next(iter(self.splits))
        return list(getattr(self.dataset(first), "class_names", []))

    @property
    def query_names(self) -> list[list[str]]:
        """Per class, its query words (synonyms): from `class_names` (+ the background words), else the class
        file (NACLIP's format), else the dataset's own names."""
        if self.class_list:
            background = [self.background.split("|")] if self.background else []
            return background + [[w.strip() for w in c.split("|") if w.strip()] for c in self.class_list]
        if self.class_file:
            return [line.split(", ") for line in read_class_file(self.class_file)]
        return [[n] for n in self.class_names]

    @property
    def background_index(self) -> int | None:
        """The index of the background class (left uncoloured in overlays), or None when every class is a thing."""
        if self.class_list or self.class_file:
            return 0 if self.background else None
        names = self.class_names
        return 0 if names and names[0] == "background" else None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", *self.val_splits), "validate": tuple(self.val_splits), "test": ("test",), "predict": ("predict",)}
        for split in wanted.get(stage, tuple(self.splits)):
            if split in self.splits:
                self.dataset(split)

    # ------------------------------------------------------------------ loaders
    def _distributed(self) -> tuple[int, int, int]:
        """(world size, global rank, current epoch) of the attached trainer; (1, 0, 0) without one."""
        t = getattr(self, "trainer", None)
        return (t.world_size, t.global_rank, t.current_epoch) if t is not None else (1, 0, 0)

    def _loader(self, split: str, train: bool) -> DataLoader:
        ds = self.dataset(split)
        world, rank, epoch = self._distributed()
        if train:
            sampler = EpochShuffleSampler(ds, world, rank, self.seed, shuffle=self.shuffle, epoch=epoch)
        else:
            sampler = UnrepeatedDistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
        return DataLoader(
            ds,
            batch_size=self.batch_size if train else self.eval_batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate,
            worker_init_fn=SeedWorker(sampler, self.seed, rank) if self.num_workers else None,
            # fresh training workers each epoch, so they are seeded from that epoch (see samplers.py)
            persistent_workers=self.num_workers > 0 and not train,
        )

    def train_dataloader(self):
        return self._loader("train", True)

    def val_dataloader(self):
        loaders = [self._loader(s, False) for s in self.val_splits]
        return loaders[0] if len(loaders) == 1 else loaders

    def test_dataloader(self):
        return self._loader("test", False)

    def predict_dataloader(self):
        return self._loader("predict" if "predict" in self.splits else "test", False)


def _check_class_names(node) -> None:
    from segexp.errors import ConfigError

    names = node.get("class_names")
    if names:
        if isinstance(names, str) or not all(isinstance(n, str) and n.strip("| ") for n in names):
            raise ConfigError(f"data.class_names={names!r} must be a list of names, e.g. 'data.class_names=[cat,dog|puppy]' "
                              f"(quotes around the whole override; synonyms separated by |).")
        firsts = [n.split("|")[0].strip() for n in names]
        if len(set(firsts)) != len(firsts):
            raise ConfigError(f"data.class_names={list(names)} names a class twice.")
    background = node.get("background")
    if background is not None and not isinstance(background, str):
        raise ConfigError(f"data.background={background!r} must be words separated by | (e.g. background|sky) or none.")
    file = node.get("class_file")
    if file:
        try:
            read_class_file(file)
        except FileNotFoundError:
            from importlib.resources import files

            packaged = sorted(p.name for p in files("segexp.data").joinpath("class_names").iterdir())
            raise ConfigError(f"data.class_file={file}: no such file, and no packaged class file of that name "
                              f"(packaged: {', '.join(packaged)}). The format is one class per line, synonyms "
                              f"separated by ', ' (NACLIP's files).") from None


def read_class_file(path: str | Path) -> list[str]:
    """NACLIP class-name files: one class per line, synonyms separated by ', '. Lines are kept verbatim."""
    p = Path(path)
    if not p.is_file():
        from importlib.resources import files

        p = Path(str(files("segexp.data").joinpath("class_names", str(path))))
    lines = [line.rstrip("\n") for line in p.read_text().splitlines()]
    return [line for line in lines if line.strip()]
