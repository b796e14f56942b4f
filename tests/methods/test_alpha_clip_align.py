"""AlphaClipAlignModule built from the real configs: optimiser groups, learning, cache, checkpoints."""
import pytest
import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate

from tests.conftest import TINY, compose_cfg


def build(tmp_path, extra=()):
    cfg = compose_cfg(["model=uninext", *TINY["uninext"], f"model.cache_dir={tmp_path / 'cache'}", *extra], tmp_path)
    return cfg, instantiate(cfg.data), instantiate(cfg.model, _convert_="partial")


class LossRecorder(L.Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def trainer(tmp_path, **kw):
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0, **kw)


def test_param_group_learning_rates(tmp_path):
    cfg, dm, module = build(tmp_path)
    t = trainer(tmp_path, max_steps=1)
    t.fit(module, datamodule=dm)
    groups = {g["name"]: g for g in t.optimizers[0].param_groups}
    assert isinstance(t.optimizers[0], torch.optim.Adam)
    assert groups["encoder"]["initial_lr"] == 1e-4 and groups["head"]["initial_lr"] == 1e-3
    enc = {id(p) for p in module.net.encoder.parameters() if p.requires_grad}
    assert not any(p.requires_grad for p in module.net.encoder.fpn1.parameters())  # unused pyramid conv: frozen
    head = {id(p) for p in groups["head"]["params"]}
    assert enc == {id(p) for p in groups["encoder"]["params"]}
    assert {id(p) for p in module.net.align.proj.parameters()} <= head and not enc & head
    assert not any(id(p) in enc | head for p in module.teacher.parameters()), "the teacher is frozen"


@pytest.mark.slow
def test_loss_falls_within_30_steps_on_synthetic_shapes(tmp_path):
    L.seed_everything(0)
    _, dm, module = build(tmp_path, ["data.splits.train.size=16", "model.optim.head_lr=1e-3", "model.optim.encoder_lr=1e-4"])
    rec = LossRecorder()
    t = trainer(tmp_path, max_steps=30, callbacks=[rec], limit_val_batches=0)
    t.fit(module, datamodule=dm)
    assert len(rec.losses) == 30
    assert np.mean(rec.losses[-5:]) < 0.8 * np.mean(rec.losses[:5]), rec.losses


@pytest.mark.slow
def test_teacher_cache_is_filled_in_epoch_one_and_hit_afterwards(tmp_path):
    _, dm, module = build(tmp_path, ["data.splits.train.size=4"])
    t = trainer(tmp_path, max_epochs=2, limit_val_batches=0)
    t.fit(module, datamodule=dm)
    cache = module.teacher_cache
    n = len(dm.dataset("train"))
    assert len(cache) == n and cache.misses == n and cache.hits == n
    assert cache.path.is_file()
    # a fresh run with the same teacher reuses the file
    _, dm2, module2 = build(tmp_path, ["data.splits.train.size=4"])
    module2.teacher.load_state_dict(module.teacher.state_dict())
    module2.trainer = t
    module2.setup("fit")
    assert len(module2.teacher_cache) == n


def test_checkpoint_excludes_the_teacher_and_holds_the_config(tmp_path):
    _, dm, module = build(tmp_path)
    module.run_config = {"model": {"name": "x"}}
    t = L.Trainer(accelerator="cpu", max_steps=1, logger=False, default_root_dir=tmp_path, enable_progress_bar=False,
                  limit_val_batches=0)
    t.fit(module, datamodule=dm)
    path = tmp_path / "m.ckpt"
    t.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    assert not any(k.startswith("teacher.") for k in ckpt["state_dict"])
    assert ckpt["segexp"]["config"] == {"model": {"name": "x"}}
    t.test(module, datamodule=dm, ckpt_path=str(path))  # restores the teacher from the live module
