"""Long steps report progress where no terminal can show a bar: a line per tenth (or every 30 s), in order."""
import itertools
import logging

import lightning as L
import torch

from segexp import progress
from segexp.callbacks import LineProgressBar, progress_bar


def test_track_logs_each_tenth_once_off_a_terminal(caplog, monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    monkeypatch.setattr(progress, "MIN_GAP_S", 0.0)
    with caplog.at_level(logging.INFO, logger="segexp"):
        assert list(progress.track(range(40), "text features")) == list(range(40))
        assert list(progress.track(range(5), "short")) == list(range(5))  # under min_total: silent
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" (")[0] for line in lines] == [f"text features: {4 * k}/40" for k in range(1, 11)]
    assert lines[-1].startswith("text features: 40/40 (100%)") and "~0 s left" in lines[-1]


def test_track_logs_every_interval_when_tenths_are_far_apart(caplog, monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    clock = itertools.count(0.0, 31.0)  # each item takes 31 s
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="segexp"):
        list(progress.track(range(1000), "cache"))
    assert len(caplog.records) == 1000  # > LINE_INTERVAL_S between items: every item is reported


def test_the_bar_is_rich_on_a_terminal_and_lines_elsewhere(monkeypatch):
    from lightning.pytorch.callbacks import RichProgressBar

    import segexp.callbacks.progress as cb

    monkeypatch.setattr(cb, "on_terminal", lambda: True)
    assert isinstance(progress_bar(), RichProgressBar)
    monkeypatch.setattr(cb, "on_terminal", lambda: False)
    assert isinstance(progress_bar(), LineProgressBar)


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch[0]).pow(2).mean())

    def test_step(self, batch, batch_idx):
        self.validation_step(batch, batch_idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_line_bar_reports_train_val_and_test_loops_with_the_bar_metrics(caplog, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "MIN_GAP_S", 0.0)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(20, 2)), batch_size=2)
    t = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
                  callbacks=[LineProgressBar()], default_root_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="segexp"):
        t.fit(Tiny(), data, data)
        t.test(t.lightning_module, data, verbose=False)
    lines = [r.getMessage() for r in caplog.records]
    train = [x for x in lines if x.startswith("epoch 0 train")]
    assert len(train) == 10 and train[-1].startswith("epoch 0 train [train/loss ") and "10/10 batches (100%)" in train[-1]
    assert sum(x.startswith("Validation: ") for x in lines) == 10
    assert sum(x.startswith("Sanity Checking: ") for x in lines) == 2  # Lightning's 2 sanity batches
    assert sum(x.startswith("Testing: ") for x in lines) == 10 and "10/10 batches (100%)" in lines[-1]


def test_a_quick_step_stays_quiet(caplog, monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    clock = itertools.count(0.0, 0.1)  # 40 items in 4 s: under MIN_GAP_S
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="segexp"):
        list(progress.track(range(40), "text features"))
    assert caplog.records == []


def test_a_loop_inside_a_batch_reports_only_once_it_is_slow(caplog, monkeypatch):
    clock = itertools.chain([0.0], [1.0] * 5, [40.0, 41.0])  # five quick window batches, then a slow one
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="segexp"):
        list(progress.while_slow(range(7), "windows", 7, "window batches"))
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["windows: 6/7 window batches"]


def test_the_train_line_resumes_after_a_mid_epoch_validation_over_two_loaders(caplog, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "MIN_GAP_S", 0.0)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(20, 2)), batch_size=2)
    val = [torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2)] * 2

    class TwoLoaders(Tiny):
        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            super().validation_step(batch, batch_idx)

    t = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
                  callbacks=[LineProgressBar()], default_root_dir=tmp_path, val_check_interval=0.5,
                  num_sanity_val_steps=0)
    with caplog.at_level(logging.INFO, logger="segexp"):
        t.fit(TwoLoaders(), data, val)
    lines = [r.getMessage() for r in caplog.records]
    after = lines[next(i for i, x in enumerate(lines) if x.startswith("Validation")):]
    resumed = [x for x in after if x.startswith("epoch 0 train")]
    assert resumed and "6/10 batches" in resumed[0], after  # the train count goes on from 5/10, not from a val line
