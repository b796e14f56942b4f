"""Reseed the main process at the start of every training epoch, from (seed, epoch, rank).

Augmentations drawn in the main process (`num_workers=0`), dropout and drop-path then depend on the epoch
alone, not on how much randomness earlier epochs consumed, so a run resumed from an epoch-end checkpoint
replays the next epoch exactly as the uninterrupted run would have (Lightning does not checkpoint RNG
states). Loader workers are seeded the same way by `segexp.data.samplers.SeedWorker`.
"""
from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from segexp.data.samplers import epoch_seed, seed_all


class EpochSeed(Callback):
    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        seed_all(epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank))
