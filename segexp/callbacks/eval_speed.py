"""Seconds per image and peak memory of a test (or validation) loop, measured the same way for every method.

Logged as `<stage>/s_per_image` (wall time of the loop's batches, data loading included, divided by the images
seen) and `<stage>/peak_mem_mb`: on CUDA the peak allocated by torch during the loop (reset at its start); on
CPU the process's peak resident set size so far (the OS keeps no per-loop peak), so only the CUDA number
compares methods run in one process.
"""
from __future__ import annotations

import resource
import sys
import time

import lightning as L
import torch


def _images(batch) -> int:
    if isinstance(batch, dict):
        if "image" in batch and torch.is_tensor(batch["image"]):
            return int(batch["image"].shape[0])
        if "meta" in batch:
            return len(batch["meta"])
    if isinstance(batch, (list, tuple)) and batch and torch.is_tensor(batch[0]):
        return int(batch[0].shape[0])
    return 1


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class EvalSpeed(L.Callback):
    def __init__(self, stages: tuple[str, ...] = ("test",)):
        self.stages = tuple(stages)
        self._start: float | None = None
        self._images = 0

    def _begin(self, pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        self._start, self._images = time.perf_counter(), 0

    def _end(self, stage: str, pl_module) -> None:
        if self._start is None or self._images == 0:
            return
        cuda = pl_module.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(pl_module.device)
        seconds = time.perf_counter() - self._start
        peak = torch.cuda.max_memory_allocated(pl_module.device) / 2**20 if cuda else _peak_rss_mb()
        pl_module.log(f"{stage}/s_per_image", seconds / self._images, sync_dist=False)
        pl_module.log(f"{stage}/peak_mem_mb", peak, sync_dist=False)
        self._start = None

    def on_test_epoch_start(self, trainer, pl_module):
        if "test" in self.stages:
            self._begin(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._images += _images(batch)

    def on_test_epoch_end(self, trainer, pl_module):
        if "test" in self.stages:
            self._end("test", pl_module)

    def on_validation_epoch_start(self, trainer, pl_module):
        if "val" in self.stages and not trainer.sanity_checking:
            self._begin(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._images += _images(batch)

    def on_validation_epoch_end(self, trainer, pl_module):
        if "val" in self.stages and not trainer.sanity_checking:
            self._end("val", pl_module)
