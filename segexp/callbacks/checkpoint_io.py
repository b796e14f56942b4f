"""Checkpoint files that are either complete or absent, and that never unpickle code on load.

Lightning's own writer stages the bytes in the system temp dir and moves them over: across filesystems
(/tmp → a cluster's shared disk) that move is a copy, so a job killed during it leaves a truncated
`last.ckpt`. Here the temp file sits beside the target, is fsync'ed, then `os.replace`d (atomic on POSIX).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only: bool | None = None):
        # segexp checkpoints hold tensors and plain types only (hparams are saved resolved)
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` into a sibling temp file, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
