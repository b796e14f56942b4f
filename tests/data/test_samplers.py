"""Training order depends on (seed, epoch) only; DDP evaluation sees every sample exactly once."""
from types import SimpleNamespace

import torch

from segexp.data.datamodule import DataModule
from segexp.data.datasets import SyntheticShapes
from segexp.data.samplers import EpochShuffleSampler, epoch_seed


def _dm(n=5):
    return DataModule(dataset=SyntheticShapes, splits={"train": {"size": n}, "test": {"size": n}},
                      batch_size=2, eval_batch_size=2, seed=3)


def test_epoch_order_is_a_function_of_seed_and_epoch():
    data = list(range(10))
    run = EpochShuffleSampler(data, seed=3)
    orders = []
    for epoch in range(3):
        run.set_epoch(epoch)
        orders.append(list(run))
    resumed = EpochShuffleSampler(data, seed=3, epoch=2)  # a fresh sampler after a resume at epoch 2
    assert list(resumed) == orders[2] and orders[0] != orders[1]
    assert sorted(orders[1]) == data
    assert epoch_seed(3, 1) == epoch_seed(3, 1) != epoch_seed(3, 2) != epoch_seed(3, 1, rank=1)


def test_ddp_eval_loaders_cover_each_sample_once_and_train_shards_split_the_epoch():
    dm = _dm(5)
    seen, train = [], []
    for rank in range(2):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank, current_epoch=0)
        seen += list(dm.test_dataloader().sampler)
        train += list(dm.train_dataloader().sampler)
    assert sorted(seen) == [0, 1, 2, 3, 4]  # a padding sampler would give 6 indices, one twice
    assert set(train) == {0, 1, 2, 3, 4}
    dm.trainer = None
    assert dm.test_dataloader().sampler.__class__.__name__ == "SequentialSampler"
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape[0] == 2 and torch.isfinite(batch["image"]).all()
