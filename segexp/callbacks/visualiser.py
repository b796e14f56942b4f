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


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    col = palette()[labels.clip(0, 255)].astype(np.float32)
    keep = (labels == 0) | (labels == 255)
    out = image.astype(np.float32) * (1 - alpha) + col * alpha
    out[keep] = image[keep]
    return out.astype(np.uint8)


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
