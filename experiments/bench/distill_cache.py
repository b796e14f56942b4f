"""Teacher-feature cache benchmark for DistillModule: student-epoch time with and without the cache.

voc_toy-sized data (32 images at 224 px with flips, as `data=voc_toy`), drawn procedurally so it runs offline;
teacher CLIP ViT-B/16 (random weights: same cost as the real ones) with MaskCLIP dense tokens, student
EfficientNet-B0. Both local-loss modes: `dense` (teacher tokens pooled per class, one teacher forward per image)
and `masked_image` (C2S: one teacher forward per image and class present). Writes experiments/bench/distill_cache.md.
"""
from __future__ import annotations

import platform
import tempfile
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate

from segexp.config import compose_config
from timing import Timer

OUT = Path(__file__).with_name("distill_cache.md")
DATA = ["data.splits.train.size=32", "data.batch_size=8", "data.eval_batch_size=8", "data.dataset.image_size=224",
        "+data.train_view={_target_: segexp.data.SegTrainView, _partial_: true, hflip: true}"]


def measure(local: str, cache: bool, workdir: Path, epochs: int = 2) -> Timer:
    L.seed_everything(0)
    cfg = compose_config(["model=distill", "model.teacher.clip_name=ViT-B-16", "model.student.backbone=efficientnet_b0",
                          f"loss.local={local}", f"model.cache={str(cache).lower()}", f"model.cache_dir={workdir / 'cache'}",
                          *DATA], workdir)
    dm, module = instantiate(cfg.data), instantiate(cfg.model, _convert_="partial")
    timer = Timer()
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[timer], default_root_dir=workdir)
    trainer.fit(module, datamodule=dm)
    return timer


def main() -> None:
    rows = []
    for local in ("dense", "masked_image"):
        res = {}
        for cache in (False, True):
            with tempfile.TemporaryDirectory() as d:
                res[cache] = measure(local, cache, Path(d))
        off, on = res[False], res[True]
        rows.append((local, off.step_times[-1], on.step_times[-1], off.epoch_times[-1], on.epoch_times[-1],
                     off.epoch_times[-1] / on.epoch_times[-1]))
    lines = [
        "# Teacher cache: DistillModule student-epoch time (CPU)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}. "
        "32 images at 224 px with flips (both versions cached), batch 8; teacher CLIP ViT-B/16 (attention=value), "
        "student efficientnet_b0; the cache is built before epoch 1 (not timed here), the epoch shown is the last of 2.",
        "",
        "| local loss | step s (no cache) | step s (cache) | epoch s (no cache) | epoch s (cache) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f}x |" for r in rows]
    lines += ["", "Target: at least 5x faster with the cache (`model.cache=true`) on voc_toy-sized data.", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
