"""Past one process: DDP evaluation is exact, DDP inside a multirun is safe, a killed run resumes exactly.

All through the CLI in subprocesses: Lightning's `ddp` launcher re-executes the command line, so an in-process
`strategy=ddp` inside pytest would re-run pytest in the child rank (docs/ddp_and_hydra.md).
"""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import ROOT, TINY, logged_metric, run_dirs

pytestmark = pytest.mark.slow  # every test here starts the CLI in a subprocess

# odd split sizes with batch 2 on 2 ranks: a padding sampler would evaluate one sample twice
TINY_DDP = ["model=uninext", *TINY["uninext"], "data.splits.val.size=5", "data.splits.test.size=5",
            "data.batch_size=2", "data.eval_batch_size=2", "callbacks.visualiser=null", "callbacks.metrics_plot=null"]
EVAL_KEYS = ["test/iou", "test/loss_total", "test/cos"]


def test_ddp_cpu_fit_and_test_metrics_equal_single_process_metrics(cli, tmp_path):
    r = cli([*TINY_DDP, "trainer=ddp_cpu", "trainer.max_epochs=1"], env={"SEGEXP_RUN_ID": "ddp"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "world size 2" in r.stdout + r.stderr
    (run,) = run_dirs(tmp_path)
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    single = cli([*TINY_DDP, "stage=test", f"ckpt_path={best}"], env={"SEGEXP_RUN_ID": "single"})
    assert single.returncode == 0, single.stderr[-3000:]
    assert "world size 1" in single.stdout + single.stderr
    for key in EVAL_KEYS:
        assert logged_metric(r, key) == logged_metric(single, key), key


def test_multirun_of_two_ddp_cpu_jobs_spawns_ranks_inside_each_job(cli, tmp_path):
    r = cli(["-m", "seed=0,1", "model=naclip", *TINY["naclip"], "data.splits.test.size=3", "data.eval_batch_size=1",
             "trainer=ddp_cpu", "callbacks.visualiser=null"])
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert out.count("using ddp_spawn") == 2 and out.count("world size 2") == 2
    sweeps = {d.parent for d in run_dirs(tmp_path)}
    assert len(sweeps) == 1, sweeps  # Lightning's ddp launcher would have started a second sweep
    jobs = run_dirs(tmp_path)
    assert [d.name for d in jobs] == ["0", "1"]
    for seed, job in enumerate(jobs):
        cfg = OmegaConf.load(job / "config.yaml")
        assert cfg.seed == seed and cfg.trainer.strategy == "ddp_spawn"
    assert all((job / "test_per_class_iou.csv").is_file() for job in jobs)


def _popen(args, tmp_path, run_id):
    env = dict(os.environ, SEGEXP_OUTPUT_ROOT=str(tmp_path / "outputs"), SEGEXP_CACHE_DIR=str(tmp_path / "cache"),
               SEGEXP_RUN_ID=run_id, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "segexp.run", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _val_history(run_dir):
    if not (run_dir / "metrics.csv").is_file():
        return []
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/loss_total")]
    return [(int(r["epoch"]), float(r["val/loss_total"]), float(r["val/iou"])) for r in rows]


def _ckpt_epoch(path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # not there yet
        return None


def test_run_killed_in_epoch_two_resumes_to_the_uninterrupted_result_though_the_metric_never_improves(cli, tmp_path):
    # `monitor=epoch` in mode min never improves after epoch 0, so best-*.ckpt stays at epoch 0 while
    # last.ckpt must follow every epoch (Lightning 2.6 alone leaves it at epoch 0, and a resume repeats epochs)
    args = ["model=uninext", *TINY["uninext"], "data.splits.train.size=16", "data.batch_size=2",
            "trainer.max_epochs=3", "callbacks.visualiser=null", "callbacks.metrics_plot=null", "logger=wandb",
            "monitor=epoch", "monitor_mode=min", "callbacks.early_stopping=null"]
    full = cli(args, env={"SEGEXP_RUN_ID": "full"})
    assert full.returncode == 0, full.stderr[-3000:]
    a = torch.load(tmp_path / "outputs" / "full" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    (best,) = (tmp_path / "outputs" / "full" / "checkpoints").glob("best-*.ckpt")
    steps_per_epoch = a["global_step"] // 3  # the regions view: one sample per object of the 16 scenes
    assert a["epoch"] == 2 and a["global_step"] == 3 * steps_per_epoch > 0
    assert best.name == "best-epoch00.ckpt" and _ckpt_epoch(best) == 0

    proc = _popen(args, tmp_path, "killed")
    run = tmp_path / "outputs" / "killed"
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not (len(_val_history(run)) >= 2 and _ckpt_epoch(last) == 1) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # epochs 0 and 1 are checkpointed and logged: the kill lands in epoch 2
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 2 * steps_per_epoch
    assert not list(last.parent.glob(".*.tmp-*"))  # no half-written checkpoint left behind

    resumed = cli([*args, "resume=true"], env={"SEGEXP_RUN_ID": "killed"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert "Restoring states from the checkpoint path" in out and run_dirs(tmp_path) == [tmp_path / "outputs" / n
                                                                                         for n in ("full", "killed")]
    for key in EVAL_KEYS:
        assert logged_metric(resumed, key) == logged_metric(full, key), key
    # the per-epoch validation history (epochs 0-1 written before the kill, 2 after the resume) is the same
    history = _val_history(run)
    assert [e for e, *_ in history] == [0, 1, 2] and history == _val_history(tmp_path / "outputs" / "full")
    b = torch.load(last, map_location="cpu", weights_only=True)
    assert b["epoch"] == 2 and a["global_step"] == b["global_step"]
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    # the resumed run logged into the killed run's W&B run, not a new one
    wandb_ids = sorted(p.name.rsplit("-", 1)[-1] for p in (run / "wandb").glob("offline-run-*"))
    assert len(wandb_ids) == 2 and wandb_ids[0] == wandb_ids[1] and f"resuming W&B run {wandb_ids[0]}" in out


def test_sigterm_stops_a_run_within_seconds_and_leaves_last_ckpt_whole(tmp_path):
    # batches of 16 regions of a 224-px scene take seconds each on CPU: Lightning's own handler waits for the batch
    args = ["model=uninext", *TINY["uninext"], "data.splits.train.size=64", "data.batch_size=16",
            "trainer.max_epochs=50", "callbacks.visualiser=null", "callbacks.metrics_plot=null"]
    proc = _popen(args, tmp_path, "term")
    last = tmp_path / "outputs" / "term" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while _ckpt_epoch(last) is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read()[-3000:]
    time.sleep(1.0)  # into the next epoch's batches
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    took = time.time() - sent
    assert proc.returncode == 143, out[-3000:]
    assert took < 10, f"stopped {took:.1f} s after SIGTERM"
    assert "segexp: stopped by SIGTERM" in out and "resume=true" in out
    assert _ckpt_epoch(last) is not None  # complete, loadable
    assert not list(last.parent.glob(".*.tmp-*"))
