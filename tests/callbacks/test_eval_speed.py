"""EvalSpeed logs a test loop's wall time per image and its peak memory."""
import itertools

import pytest

import lightning as L
import torch

import segexp.callbacks.eval_speed as eval_speed
from segexp.callbacks import EvalSpeed


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def test_step(self, batch, batch_idx):
        self.log("test/loss", self.layer(batch[0]).pow(2).mean())


def test_seconds_per_image_is_the_loop_time_over_the_images_seen(tmp_path, monkeypatch):
    clock = itertools.count(100.0, 3.0)  # the loop starts at 100 s and ends 3 s later
    monkeypatch.setattr(eval_speed.time, "perf_counter", lambda: next(clock))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(10, 2)), batch_size=4)  # 4+4+2
    t = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                  callbacks=[EvalSpeed()], default_root_dir=tmp_path)
    t.test(Tiny(), data, verbose=False)
    assert float(t.callback_metrics["test/s_per_image"]) == pytest.approx(3.0 / 10)
    assert float(t.callback_metrics["test/peak_mem_mb"]) > 10  # the process's peak RSS (a torch process: >100 MB)
