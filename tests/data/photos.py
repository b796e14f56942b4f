"""A folder of a user's photos, written by the tests: several image types, a nested folder, a corrupt file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def scene(h: int, w: int) -> np.ndarray:
    """A grey photo with a red and a blue rectangle."""
    a = np.full((h, w, 3), 190, np.uint8)
    a[h // 4: h // 2, w // 4: w // 2] = (220, 30, 30)
    a[h // 2:, w // 2:] = (30, 40, 210)
    return a


def write_photos(root: Path, corrupt: bool = True) -> dict[str, tuple[int, int]]:
    """{expected prediction id: (h, w)} of the readable images written under `root`."""
    (root / "trip" / "day2").mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene(60, 80)).save(root / "beach.jpg")
    Image.fromarray(scene(48, 48)).save(root / "Garden.PNG")
    Image.fromarray(scene(40, 72)).save(root / "trip" / "day2" / "harbour.webp")
    (root / "notes.txt").write_text("not an image")
    if corrupt:
        (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return {"beach": (60, 80), "Garden": (48, 48), "trip/day2/harbour": (40, 72)}
