"""Samplers that make a run reproducible across ranks and across a kill + resume.

- Training order is a function of (seed, epoch) alone: `EpochShuffleSampler` is a `DistributedSampler`
  (one replica when not distributed), so Lightning keeps it under DDP and calls `set_epoch` on it, and a
  resumed run replays the interrupted epoch's exact order. A plain `RandomSampler` with a generator would
  restart its stream on resume.
- Evaluation under DDP uses Lightning's `UnrepeatedDistributedSampler`: every sample is seen exactly once
  (the default `DistributedSampler` pads with repeated samples, which would be counted twice in mIoU and
  retrieval metrics). Ranks may then run one batch fewer; segexp's eval steps use no per-step collectives.
- Loader workers draw their seeds from (seed, epoch, rank, worker id), not from the global RNG state at the
  moment the iterator happens to be created (which differs between an uninterrupted and a resumed run).
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, get_worker_info


def epoch_seed(seed: int, epoch: int, rank: int = 0, worker: int = 0) -> int:
    """One 63-bit seed per (seed, epoch, rank, worker): a fixed mix, stable across Python processes."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, epoch, rank, worker]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


def seed_all(value: int) -> None:
    """torch (CPU and CUDA), numpy and `random` from one value."""
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


class EpochShuffleSampler(DistributedSampler):
    """Shuffles with a permutation seeded by (seed, epoch); shards it over `num_replicas` ranks."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True,
                 epoch: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        # the loader's first iterator can be created before Lightning calls set_epoch (e.g. on resume)
        self.set_epoch(epoch)


class SeedWorker:
    """`worker_init_fn`: seed each loader worker from its sampler's (seed, epoch) and its rank and id.

    The sampler copy a worker receives carries the epoch set before the iterator was created.
    """

    def __init__(self, sampler: DistributedSampler | None, seed: int, rank: int = 0):
        self.sampler, self.seed, self.rank = sampler, int(seed), int(rank)

    def __call__(self, worker_id: int) -> None:
        epoch = getattr(self.sampler, "epoch", 0)
        seed_all(epoch_seed(self.seed, epoch, self.rank, 1 + get_worker_info().id))
