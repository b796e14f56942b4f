"""Checkpoint files that are either complete or absent, and that never unpickle code on load.

Lightning's own writer stages the bytes in the system temp dir and moves them over: across filesystems
(/tmp → a cluster's shared disk) that move is a copy, so a job killed during it leaves a truncated
`last.ckpt`. Here the temp file sits beside the target, is fsync'ed, then `os.replace`d (atomic on POSIX).
"""
from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from segexp.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only: bool | None = None):
        # segexp checkpoints hold tensors and plain types only (hparams are saved resolved)
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)

