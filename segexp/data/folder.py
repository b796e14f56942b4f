"""Image folders with optional label PNGs: the mmseg-prepared benchmark layouts and plain folders."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from segexp.data.datasets import DataError, SegDataset
from segexp.data.io import read_label, read_rgb
from segexp.data.transforms import CLIP_MEAN, CLIP_STD, IGNORE_INDEX, resize_short_side, to_tensor_image


#: what `img_suffix=null` finds (case-insensitive): every common image type
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _suffixes(img_suffix) -> tuple[str, ...]:
    if img_suffix is None:
        return IMAGE_SUFFIXES
    return (img_suffix,) if isinstance(img_suffix, str) else tuple(img_suffix)


def _matched_suffix(name: str, suffixes: tuple[str, ...]) -> str | None:
    low = name.lower()
    return next((s for s in suffixes if low.endswith(s.lower())), None)


def list_images(img_dir: Path, img_suffix=None) -> list[str]:
    """Image files under `img_dir`, recursively, as sorted relative POSIX paths (suffix match case-insensitive)."""
    suffixes = _suffixes(img_suffix)
    return sorted(p.relative_to(img_dir).as_posix() for p in img_dir.rglob("*")
                  if _matched_suffix(p.name, suffixes) and not p.name.startswith(".") and p.is_file())


class FolderSegDataset(SegDataset):
    """`root/img_dir/<id><img_suffix>` with labels `root/ann_dir/<id><seg_suffix>` (none: prediction only).

    Ids come from `split_file` (one per line) or from a recursive listing of `img_dir`: with
    `img_suffix=null` every common image type (IMAGE_SUFFIXES, any case), and an id is the file's relative path
    without its suffix (with it, as `name_png`, when two files share a stem). EXIF orientation is applied. The image is resized
    so its short side is `short_side` (long side at most `max_long`, bilinear); the label stays at the
    original size, where predictions are evaluated. `reduce_zero_label` maps 0 → 255 and c → c-1 (mmseg).
    `split_file` and `ann_dir` may be lists of equal length (VOC trainaug: train.txt with SegmentationClass plus
    aug.txt with SegmentationClassAug); `limit` keeps the first N ids (toy subsets).
    """

    requires_root = True
    layout = "ROOT/<img_dir>/<id><img_suffix> and ROOT/<ann_dir>/<id><seg_suffix> (mmseg-prepared)"

    def __init__(self, root: str, img_dir: str = ".", ann_dir: str | list[str] | None = None,
                 img_suffix: str | list[str] | None = ".jpg",
                 seg_suffix: str = ".png", split_file: str | list[str] | None = None, reduce_zero_label: bool = False,
                 short_side: int | None = 336, max_long: int = 2048, name: str = "folder", split: str = "val",
                 mean=CLIP_MEAN, std=CLIP_STD, class_names: list[str] | None = None, limit: int | None = None):
        self.root = Path(root).expanduser()
        self.img_dir = self.root / img_dir
        ann_dirs = [ann_dir] if isinstance(ann_dir, str) or ann_dir is None else list(ann_dir)
        split_files = [split_file] if isinstance(split_file, str) or split_file is None else list(split_file)
        if len(ann_dirs) != len(split_files):
            raise ValueError(f"{name}: ann_dir and split_file lists differ in length ({ann_dirs} vs {split_files})")
        self.img_suffix, self.seg_suffix = img_suffix, seg_suffix
        self.reduce_zero_label = reduce_zero_label
        self.short_side, self.max_long = short_side, max_long
        self.name, self.split, self.mean, self.std = name, split, tuple(mean), tuple(std)
        self.class_names = list(class_names or [])
        if not self.img_dir.is_dir():
            raise DataError(f"{name}: image folder not found: {self.img_dir}")
        ids, files, self.ann_dirs = [], [], []
        for adir, sfile in zip(ann_dirs, split_files):
            if sfile:
                part = [line.strip() for line in (self.root / sfile).read_text().splitlines() if line.strip()]
                found = [f"{i}{_suffixes(img_suffix)[0]}" for i in part]
            else:
                found = list_images(self.img_dir, img_suffix)
                part = _ids_of(found, _suffixes(img_suffix))
            ids, files = ids + part, files + found
            self.ann_dirs += [self.root / adir if adir else None] * len(part)
        if limit:
            ids, files, self.ann_dirs = ids[: int(limit)], files[: int(limit)], self.ann_dirs[: int(limit)]
        if not ids:
            raise DataError(no_images_message(name, self.img_dir, img_suffix))
        self.ids, self.files = ids, files

    @classmethod
    def check_files(cls, root, dataset_node) -> None:
        """Config-time check (before any model is built) that a listed folder holds images."""
        from segexp.errors import ConfigError

        if dataset_node.get("split_file"):
            return
        img_dir = Path(str(root)).expanduser() / str(dataset_node.get("img_dir") or ".")
        name, suffix = dataset_node.get("name") or "folder", dataset_node.get("img_suffix", ".jpg")
        if not img_dir.is_dir():
            raise ConfigError(f"data.root: {name}: image folder not found: {img_dir}")
        if not any(_matched_suffix(p.name, _suffixes(suffix)) for p in img_dir.rglob("*")):
            raise ConfigError(f"data.root: {no_images_message(name, img_dir, suffix)}")

    def fingerprint(self) -> str:
        """Identifies what the samples are, for caches: the resize and the normalisation are part of it."""
        fp = f"{self.name}-{self.split}-{self.short_side}-n{len(self.ids)}-z{int(self.reduce_zero_label)}"
        if self.max_long != 2048:
            fp += f"-l{self.max_long}"
        if (self.mean, self.std) != (tuple(CLIP_MEAN), tuple(CLIP_STD)):
            fp += "-m" + ",".join(f"{v:g}" for v in self.mean + self.std)
        return fp

    def __len__(self) -> int:
        return len(self.ids)

    def label_path(self, i: int) -> Path | None:
        adir = self.ann_dirs[i]
        return adir / f"{self.ids[i]}{self.seg_suffix}" if adir else None

    def __getitem__(self, index: int) -> dict:
        path = self.img_dir / self.files[index]
        rgb = read_rgb(path, index)
        image = to_tensor_image(rgb, self.mean, self.std)
        if self.short_side:
            image = resize_short_side(image, self.short_side, self.max_long)
        out = {"image": image, "meta": {"id": self.ids[index], "key": f"{self.fingerprint()}:{self.ids[index]}",
                                        "path": str(path), "ori_shape": list(rgb.shape[:2])}}
        lp = self.label_path(index)
        if lp is not None:
            label = read_label(lp, index)
            if label.shape != rgb.shape[:2]:
                raise DataError(f"sample {index}: mask {lp} is {label.shape}, image {path} is {rgb.shape[:2]}")
            if self.reduce_zero_label:
                label = np.where(label == 0, IGNORE_INDEX, label - 1)
                label[label == IGNORE_INDEX - 1] = IGNORE_INDEX
            out["mask"] = torch.from_numpy(label.astype(np.int64))
        return out


def _ids_of(files: list[str], suffixes: tuple[str, ...]) -> list[str]:
    """Relative paths without their suffix; with it (`name_png`) where two files share a stem."""
    cut = [len(_matched_suffix(f, suffixes)) for f in files]
    stems = [f[:-n] for f, n in zip(files, cut)]
    clash = {s for s, k in Counter(stems).items() if k > 1}
    return [s + "_" + f[-n:].lstrip(".").lower() if s in clash else s for f, s, n in zip(files, stems, cut)]


def no_images_message(name: str, img_dir: Path, img_suffix) -> str:
    types = ", ".join(_suffixes(img_suffix))
    return (f"{name}: no images under {img_dir} (looked recursively for {types}; "
            f"data.dataset.img_suffix=null finds every common type).")
