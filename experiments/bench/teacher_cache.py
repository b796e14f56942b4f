"""Teacher-embedding cache benchmark for AlphaClipAlign: step and epoch time with and without the cache.

Writes experiments/bench/teacher_cache.md. Run with `make bench`.
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

OUT = Path(__file__).with_name("teacher_cache.md")


def measure(clip_name: str, regions_scenes: int, cache: bool, workdir: Path) -> Timer:
    L.seed_everything(0)
    cfg = compose_config([
        f"model.net.clip_name={clip_name}", f"model.teacher.cache={str(cache).lower()}",
        f"data.splits.train.size={regions_scenes}", "data.batch_size=8", f"model.cache_dir={workdir / 'cache'}",
    ], workdir)
    dm, module = instantiate(cfg.data), instantiate(cfg.model, _convert_="partial")
    timer = Timer()
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        callbacks=[timer], default_root_dir=workdir)
    trainer.fit(module, datamodule=dm)
    return timer


def main() -> None:
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    rows = []
    for clip_name, scenes in (("segexp-ViT-D-16", 24), ("ViT-B-16", 6)):
        res = {}
        for cache in (False, True):
            with tempfile.TemporaryDirectory() as d:
                res[cache] = measure(clip_name, scenes, cache, Path(d))
        off, on = res[False], res[True]
        rows.append((clip_name, scenes, off.step_times[1], on.step_times[1], off.epoch_times[1], on.epoch_times[1],
                     off.epoch_times[1] / on.epoch_times[1]))
    lines = [
        "# Teacher cache: AlphaClipAlign epoch time (CPU)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}. "
        "Student and teacher share the CLIP shape; random weights; batch 8; epoch 2 is the one the cache serves.",
        "",
        "| student / teacher | scenes | step s (no cache) | step s (cache) | epoch-2 s (no cache) | epoch-2 s (cache) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.2f}x |")
    lines += ["", "Target: epoch 2 at least 1.3x faster with the cache (`model.teacher.cache=true`).", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
