"""`stage=predict` for every segmentation method: index PNGs with the VOC palette (lossless, original size)
plus overlay JPGs, in `<run dir>/predictions/`. The method's `predict_step` returns
{"pred": [h,w] uint8 per image at its original shape, "meta": [...], "image": the network input}."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BasePredictionWriter

from segexp.callbacks.visualiser import overlay, palette
from segexp.data.transforms import denormalise


def save_palette_png(pred: np.ndarray, path: Path) -> None:
    from PIL import Image

    if pred.max(initial=0) > 255:
        raise ValueError(f"{path.name}: class index {pred.max()} does not fit a palette PNG")
    im = Image.fromarray(pred.astype(np.uint8), mode="P")
    im.putpalette(palette().flatten().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def prediction_name(meta: dict, fallback: str) -> str:
    """The file stem of an image's prediction: its dataset id, flattened to one path component."""
    return str(meta.get("id", fallback)).replace("/", "_").replace("#", "_")


class SegPredictionWriter(BasePredictionWriter):
    def __init__(self, dirname: str = "predictions", overlays: bool = True):
        super().__init__(write_interval="batch")
        self.dirname, self.overlays = dirname, overlays

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        if not isinstance(prediction, dict) or "pred" not in prediction:
            return
        out_dir = Path(trainer.default_root_dir) / self.dirname
        for i, (pred, meta) in enumerate(zip(prediction["pred"], prediction["meta"])):
            pred = pred.cpu().numpy() if torch.is_tensor(pred) else np.asarray(pred)
            name = prediction_name(meta, f"{batch_idx}_{i}")
            save_palette_png(pred, out_dir / f"{name}.png")
            if self.overlays:
                self._overlay(pred, meta, prediction.get("image"), i, out_dir / f"{name}_overlay.jpg")

    @staticmethod
    def _overlay(pred: np.ndarray, meta: dict, images, i: int, path: Path) -> None:
        from PIL import Image

        src = meta.get("path")
        if src and Path(src).is_file():
            with Image.open(src) as im:
                rgb = np.asarray(im.convert("RGB"))
        elif images is not None:
            img = images[i]
            if tuple(img.shape[-2:]) != pred.shape:
                img = F.interpolate(img[None].float(), size=pred.shape, mode="bilinear", align_corners=False)[0]
            rgb = denormalise(img)
        else:
            return
        if rgb.shape[:2] != pred.shape:
            rgb = np.asarray(Image.fromarray(rgb).resize(pred.shape[::-1], Image.BILINEAR))
        Image.fromarray(overlay(rgb, pred)).save(path, quality=90)
