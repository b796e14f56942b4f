"""The Lightning 2.6 checkpoint and early-stopping behaviour segexp relies on, on a tiny in-process fit."""
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from segexp.callbacks import FreshLastCheckpoint


class Regression(L.LightningModule):
    """Learns y = 2x; logs `val/const` (never improves) and `val/loss` (improves)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, _):
        x, y = batch
        return ((self.w * x - y) ** 2).mean()

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/loss", ((self.w * x - y) ** 2).mean())
        self.log("val/const", torch.tensor(1.0))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _loader(n=8):
    x = torch.linspace(-1, 1, n)[:, None]
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x), batch_size=2)


def _fit(tmp_path, checkpoint, **trainer_kw):
    trainer = L.Trainer(default_root_dir=tmp_path, callbacks=[checkpoint, *trainer_kw.pop("callbacks", [])],
                        logger=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        **trainer_kw)
    trainer.fit(Regression(), _loader(), _loader())
    return trainer


def _saved(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt["epoch"], ckpt["global_step"], float(ckpt["state_dict"]["w"])


@pytest.mark.parametrize("cls, fresh", [(ModelCheckpoint, False), (FreshLastCheckpoint, True)])
def test_last_follows_every_epoch_when_the_metric_never_improves(tmp_path, cls, fresh):
    cb = cls(dirpath=tmp_path, monitor="val/const", mode="max", save_last=True, save_top_k=1, filename="best")
    trainer = _fit(tmp_path, cb, max_epochs=3)
    assert _saved(tmp_path / "best.ckpt")[:2] == (0, 4)
    final = (2, 12, float(trainer.lightning_module.w))
    # Lightning's own callback leaves last.ckpt at epoch 0: the reason FreshLastCheckpoint exists
    assert (_saved(tmp_path / "last.ckpt") == final) is fresh


def test_last_holds_the_end_of_a_max_steps_stop_mid_epoch(tmp_path):
    cb = FreshLastCheckpoint(dirpath=tmp_path, monitor="val/loss", save_last=True, save_top_k=1, filename="best")
    trainer = _fit(tmp_path, cb, max_steps=6, max_epochs=5)
    assert _saved(tmp_path / "last.ckpt") == (1, 6, float(trainer.lightning_module.w))
    assert _saved(tmp_path / "best.ckpt")[:2] == (0, 4)  # the only validation ran after epoch 0


def test_early_stopping_after_validation_stops_on_patience_and_last_is_the_stop_epoch(tmp_path):
    cb = FreshLastCheckpoint(dirpath=tmp_path, monitor="val/const", mode="max", save_last=True, filename="best")
    stop = EarlyStopping(monitor="val/const", mode="max", patience=2, check_on_train_epoch_end=False)
    trainer = _fit(tmp_path, cb, max_epochs=10, callbacks=[stop])
    assert stop.stopped_epoch == 2 and trainer.current_epoch == 3
    assert _saved(tmp_path / "last.ckpt")[:2] == (2, 12)
    assert cb.best_model_path.endswith("best.ckpt") and _saved(cb.best_model_path)[0] == 0


def test_fast_dev_run_writes_no_checkpoint(tmp_path):
    cb = FreshLastCheckpoint(dirpath=tmp_path, monitor="val/loss", save_last=True)
    _fit(tmp_path, cb, fast_dev_run=True)
    assert not list(tmp_path.glob("*.ckpt"))
