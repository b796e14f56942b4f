"""Checkpoints are complete or absent, load weights-only, and the CSV history survives a second writer."""
import csv
import pickle

import pytest
import torch

from segexp.callbacks import AtomicCheckpointIO, CSVLogger


def test_a_save_interrupted_midway_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, path)

    def dies_halfway(obj, f, *a, **kw):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04 partial bytes")
        raise KeyboardInterrupt  # stands for the job being killed during the write

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, path)
    monkeypatch.undo()
    ckpt = io.load_checkpoint(path)
    assert ckpt["epoch"] == 0 and torch.equal(ckpt["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temp file left


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_loading_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "x": Payload()}, f)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_csv_history_is_appended_across_writers(tmp_path):
    first = CSVLogger(tmp_path, name="", version="")
    first.log_metrics({"train/loss": 1.0}, step=0)
    second = CSVLogger(tmp_path, name="", version="")  # a resumed run, or a ddp_spawn rank after fit
    second.log_metrics({"test/miou": 50.0}, step=1)
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["train/loss"], r["test/miou"]) for r in rows] == [("0", "1.0", ""), ("1", "", "50.0")]
