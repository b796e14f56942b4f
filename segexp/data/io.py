"""Reading image and label files with errors that name the file and the sample index."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from segexp.data.datasets import DataError


def read_rgb(path: str | Path, index: int) -> np.ndarray:
    from PIL import Image

    from PIL import ImageOps

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))  # as taken: cameras store rotation in EXIF
    except Exception as e:  # truncated, not an image, unreadable...
        raise DataError(f"sample {index}: cannot read image {path}: {type(e).__name__}: {e}") from None


def read_label(path: str | Path, index: int) -> np.ndarray:
    """A label PNG as its raw indices (palette PNGs keep their indices; no colour conversion)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im if im.mode in ("P", "L", "I", "I;16") else im.convert("L")).astype(np.int64)
    except Exception as e:
        raise DataError(f"sample {index}: cannot read mask {path}: {type(e).__name__}: {e}") from None
