"""`stage=predict` for every segmentation method, written for a person to read.

Per image, in `<run dir>/predictions/` (mirroring the input folder's tree): `<id>.png`, the class index map with
the VOC palette at the image's original size (lossless); `<id>_overlay.jpg`, the image with the classes coloured
and a legend of the classes present; one row of `summary.csv` (each class's area in %). At the end,
`index.html` shows every overlay as a static gallery (no server), and with `logger=wandb` the images go to a
W&B table with their prediction masks. The method's `predict_step` returns {"pred": [h,w] uint8 per image at its
original shape, "meta": [...], "image": the network input}; its `class_names` name the classes.
"""
from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BasePredictionWriter

from segexp.callbacks.visualiser import palette, with_legend
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
    """The path (below predictions/, without suffix) of an image's outputs: its dataset id, sub-folders kept."""
    parts = [p for p in str(meta.get("id", fallback)).replace("#", "_").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or fallback


def area_percentages(pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[num_classes] share of the image's pixels per class, in percent."""
    counts = np.bincount(pred.reshape(-1).astype(np.int64), minlength=num_classes)[:num_classes]
    return 100.0 * counts / max(pred.size, 1)


class SegPredictionWriter(BasePredictionWriter):
    def __init__(self, dirname: str = "predictions", overlays: bool = True, gallery: bool = True):
        super().__init__(write_interval="batch")
        self.dirname, self.overlays, self.gallery = dirname, overlays, gallery
        self._rows: list[dict] = []
        self._names: list[str] = []
        self._background: int | None = None

    def on_predict_start(self, trainer, pl_module) -> None:
        self._rows = []
        self._names = list(getattr(pl_module, "class_names", []))  # set up by then (the module's setup)
        self._background = _background_index(trainer, self._names)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        if not isinstance(prediction, dict) or "pred" not in prediction:
            return
        out_dir = Path(trainer.default_root_dir) / self.dirname
        names, background = self._names, self._background
        for i, (pred, meta) in enumerate(zip(prediction["pred"], prediction["meta"])):
            pred = pred.cpu().numpy() if torch.is_tensor(pred) else np.asarray(pred)
            name = prediction_name(meta, f"{batch_idx}_{i}")
            save_palette_png(pred, out_dir / f"{name}.png")
            row = {"image": name, "source": meta.get("path", ""), "height": pred.shape[0], "width": pred.shape[1]}
            row.update({n: round(float(a), 3) for n, a in zip(names, area_percentages(pred, len(names)))})
            if self.overlays:
                rgb = _source_rgb(pred, meta, prediction.get("image"), i)
                if rgb is not None:
                    from PIL import Image

                    Image.fromarray(with_legend(rgb, pred, names, background)).save(out_dir / f"{name}_overlay.jpg", quality=90)
                    row["overlay"] = f"{name}_overlay.jpg"
            self._rows.append(row)

    def on_predict_end(self, trainer, pl_module) -> None:
        """Per-rank rows are merged by rank 0 into summary.csv and index.html (and the W&B table)."""
        out_dir = Path(trainer.default_root_dir) / self.dirname
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = [self._rows]
        if trainer.world_size > 1:
            import torch.distributed as dist

            rows = [None] * trainer.world_size
            dist.all_gather_object(rows, self._rows)
        if not trainer.is_global_zero:
            return
        rows = sorted((r for part in rows for r in part), key=lambda r: r["image"])
        names = self._names
        with open(out_dir / "summary.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["image", "source", "height", "width", *names], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        if self.gallery and self.overlays:
            (out_dir / "index.html").write_text(gallery_html(rows, names, trainer.default_root_dir))
        wandb_logger = next((lg for lg in trainer.loggers if type(lg).__name__ == "WandbLogger"), None)
        if wandb_logger is not None:
            _log_wandb_table(wandb_logger, out_dir, rows, names)


def _background_index(trainer, names: list[str]) -> int | None:
    """The uncoloured class: the data's background when the data named the classes, else a class 0 'background'
    (class names stored in a checkpoint)."""
    dm = getattr(trainer, "datamodule", None)
    if dm is not None and hasattr(dm, "background_index") and names and dm.class_names == names:
        return dm.background_index
    return 0 if names and names[0] == "background" else None


def _source_rgb(pred: np.ndarray, meta: dict, images, i: int) -> np.ndarray | None:
    """The original image at the prediction's size (from its file, else the de-normalised network input)."""
    from PIL import Image

    from segexp.data.io import read_rgb

    src = meta.get("path")
    if src and Path(src).is_file():
        rgb = read_rgb(src, i)
    elif images is not None:
        img = images[i]
        if tuple(img.shape[-2:]) != pred.shape:
            img = F.interpolate(img[None].float(), size=pred.shape, mode="bilinear", align_corners=False)[0]
        rgb = denormalise(img)
    else:
        return None
    if rgb.shape[:2] != pred.shape:
        rgb = np.asarray(Image.fromarray(rgb).resize(pred.shape[::-1], Image.BILINEAR))
    return rgb


def gallery_html(rows: list[dict], names: list[str], run_dir) -> str:
    """A static page: one card per image (its overlay, name and the classes covering at least 0.5 %)."""
    cards = []
    for r in rows:
        if "overlay" not in r:
            continue
        top = sorted(((r.get(n, 0.0), n) for n in names), reverse=True)
        classes = ", ".join(f"{html.escape(n)} {a:.1f}%" for a, n in top if a >= 0.5)
        cards.append(f'<figure><a href="{html.escape(r["overlay"])}"><img src="{html.escape(r["overlay"])}" '
                     f'alt="{html.escape(r["image"])}" loading="lazy"></a><figcaption><b>{html.escape(r["image"])}</b>'
                     f'<br>{classes}</figcaption></figure>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>segexp predictions</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; background: #fafafa; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1em; }}
figure {{ margin: 0; background: white; border: 1px solid #ddd; border-radius: 6px; padding: .5em; }}
img {{ width: 100%; height: auto; display: block; }}
figcaption {{ font-size: .85em; margin-top: .4em; color: #333; }}
</style></head><body>
<h1>segexp predictions</h1>
<p>{len(cards)} images from <code>{html.escape(str(run_dir))}</code>; class areas in <a href="summary.csv">summary.csv</a>.</p>
<div class="grid">
{chr(10).join(cards)}
</div></body></html>
"""


def _log_wandb_table(logger, out_dir: Path, rows: list[dict], names: list[str]) -> None:
    import wandb
    from PIL import Image

    labels = dict(enumerate(names))
    table = wandb.Table(columns=["image", "prediction", *names])
    for r in rows:
        if "overlay" not in r:
            continue
        pred = np.asarray(Image.open(out_dir / f"{r['image']}.png"))
        rgb = _source_rgb(pred, {"path": r["source"]}, None, 0)
        if rgb is None:
            continue
        image = wandb.Image(rgb, masks={"predictions": {"mask_data": pred, "class_labels": labels}})
        table.add_data(r["image"], image, *[r.get(n, 0.0) for n in names])
    logger.experiment.log({"predict/predictions": table})
