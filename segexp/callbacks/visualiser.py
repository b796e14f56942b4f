"""Segmentation overlays of a fixed set of validation images, every validation epoch.

The module provides `visual_sample(batch) -> {image, gt, pred, class_labels[, prompt]}`. On W&B the
overlays go out as `wandb.Image` with ground-truth and prediction masks; otherwise as PNG grids in
`<run dir>/visualisations/`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from segexp.data.transforms import denormalise

log = logging.getLogger(__name__)


def palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: [n, 3] uint8 (index 255 stays white for 'ignore')."""
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    if n > 255:
        pal[255] = (255, 255, 255)
    return pal


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5, background: int | None = 0) -> np.ndarray:
    """Blend the palette colour of each pixel's class into `image`; `background` (and 255) stay uncoloured."""
    col = palette()[labels.clip(0, 255)].astype(np.float32)
    keep = (labels == 255) if background is None else (labels == background) | (labels == 255)
    out = image.astype(np.float32) * (1 - alpha) + col * alpha
    out[keep] = image[keep]
    return out.astype(np.uint8)


def with_legend(image: np.ndarray, labels: np.ndarray, class_names: list[str], background: int | None = 0) -> np.ndarray:
    """`overlay` plus a legend panel on the right: a colour swatch and the name of every class present."""
    from PIL import Image, ImageDraw, ImageFont

    present = [int(c) for c in np.unique(labels) if c != 255 and c < len(class_names)]
    h, w = labels.shape
    font = ImageFont.load_default(size=max(12, min(h, w) // 30))
    row = int(font.size * 1.6)
    names = [f"{class_names[c]}" + (" (not coloured)" if c == background else "") for c in present]
    width = max([int(font.getlength(n)) for n in names] + [0]) + row + 24
    canvas = Image.new("RGB", (w + width, max(h, row * len(present) + 16)), (255, 255, 255))
    canvas.paste(Image.fromarray(overlay(image, labels, background=background)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (c, name) in enumerate(zip(present, names)):
        y = 8 + k * row
        draw.rectangle([w + 8, y, w + 8 + row - 6, y + row - 6], fill=tuple(int(v) for v in palette()[c]), outline=(0, 0, 0))
        draw.text((w + 8 + row, y), name, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


class SegVisualiser(Callback):
    def __init__(self, num_images: int = 6, every_n_epochs: int = 1, dirname: str = "visualisations"):
        self.num_images, self.every_n_epochs, self.dirname = num_images, every_n_epochs, dirname
        self._batch = None

    def _fixed_batch(self, trainer):
        if self._batch is None:
            loaders = trainer.val_dataloaders
            loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
            if loader is None:
                return None
            batch = next(iter(loader))
            n = self.num_images
            self._batch = {k: v[:n] for k, v in batch.items()}
        return self._batch

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or not hasattr(pl_module, "visual_sample"):
            return
        if trainer.current_epoch % self.every_n_epochs or not trainer.is_global_zero:
            return
        batch = self._fixed_batch(trainer)
        if batch is None:
            return
        dev = {k: v.to(pl_module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        was_training = pl_module.training
        pl_module.eval()
        sample = pl_module.visual_sample(dev)
        pl_module.train(was_training)
        self.write(trainer, sample, step=trainer.global_step, tag=f"epoch{trainer.current_epoch:03d}")

    def write(self, trainer, sample: dict, step: int, tag: str) -> Path | None:
        images = [denormalise(x) for x in sample["image"]]
        gts = [g.cpu().numpy().astype(np.int64) for g in sample["gt"]]
        preds = [p.cpu().numpy().astype(np.int64) for p in sample["pred"]]
        labels = sample.get("class_labels", {})
        wandb_logger = next((lg for lg in trainer.loggers if type(lg).__name__ == "WandbLogger"), None)
        if wandb_logger is not None:
            masks = [{"predictions": {"mask_data": p, "class_labels": labels}, "ground_truth": {"mask_data": g, "class_labels": labels}}
                     for p, g in zip(preds, gts)]
            wandb_logger.log_image(key="val/overlay", images=images, masks=masks, step=step)
        rows = [np.concatenate([im, overlay(im, g), overlay(im, p)], axis=1) for im, g, p in zip(images, gts, preds)]
        grid = np.concatenate(rows, axis=0)
        out_dir = Path(trainer.default_root_dir) / self.dirname
        out_dir.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        path = out_dir / f"overlay_{tag}.png"
        Image.fromarray(grid).save(path)
        return path
