"""Do the embedded defaults learn? Runs each offline default exactly as the README gives it, and writes results.md.

For each default (`make run`, `model=distill`, `model=t2i_reid`): the wall time of the whole command, the monitored
validation metric after the first and after the last epoch (from the run's metrics.csv), the test metric (on the
best epoch's checkpoint, as segexp.run tests after fit), and the baseline the test metric must beat:
  * uninext: the box prompt itself taken as the mask (what a head that learnt nothing but "copy the prompt" gets);
  * distill: predicting background everywhere (the failure mode of an under-trained student);
  * t2i_reid: chance R@1 of a random ranking (relevant images per query / gallery size).
Usage: `python experiments/first_hour/run.py` (about 4 minutes on 2 cores); `--only distill` runs one.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

#: name → (README command's overrides, monitored metric, test metric)
DEFAULTS = {
    "make run (model=uninext loss=seg_align)": (["model=uninext", "loss=seg_align"], "val/iou", "test/iou"),
    "model=distill": (["model=distill"], "val/miou", "test/miou"),
    "model=t2i_reid": (["model=t2i_reid"], "val/R1", "test/R1"),
}


def compose(overrides: list[str]):
    from segexp.config import compose_config

    return compose_config(overrides, tempfile.mkdtemp())


def box_prompt_iou(overrides: list[str]) -> float:
    """IoU (%) of each test region's box prompt against its mask, accumulated over the test split like test/iou."""
    from hydra.utils import instantiate
    from torchmetrics.classification import BinaryJaccardIndex

    dm = instantiate(compose(overrides).data)
    dm.setup("test")
    metric = BinaryJaccardIndex(ignore_index=255)
    for batch in dm.test_dataloader():
        metric.update((batch["alpha"].squeeze(1) > 0.5).long(), batch["target_mask"])
    return 100.0 * float(metric.compute())


def background_only_miou(overrides: list[str]) -> float:
    """mIoU (%) of predicting class 0 everywhere on the test split."""
    from hydra.utils import instantiate

    from segexp.metrics import confusion_metric, scores

    dm = instantiate(compose(overrides).data)
    dm.setup("test")
    metric = confusion_metric(len(dm.class_names))
    for batch in dm.test_dataloader():
        for mask in batch["mask"]:
            metric.update(torch.zeros_like(mask).reshape(-1).long(), mask.reshape(-1).long())
    return scores(metric.compute()).miou


def chance_r1(overrides: list[str]) -> float:
    """R@1 (%) of a random ranking: the mean share of relevant gallery images per caption query."""
    from hydra.utils import instantiate

    dm = instantiate(compose(overrides).data)
    dm.setup("test")
    pids = torch.cat([torch.as_tensor(b["pid"]) for b in dm.test_dataloader()])
    counts = torch.bincount(pids)
    return 100.0 * float((counts[pids].float() / len(pids)).mean())


BASELINES = {"val/iou": ("box prompt as mask", box_prompt_iou), "val/miou": ("background only", background_only_miou),
             "val/R1": ("chance", chance_r1)}


def run_default(name: str, overrides: list[str], val_key: str, test_key: str, out_root: Path) -> dict:
    run_id = name.split()[0] if name.startswith("make") else name.split("=")[1]
    env = dict(os.environ, SEGEXP_OUTPUT_ROOT=str(out_root), SEGEXP_RUN_ID=run_id, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "segexp.run", *overrides], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rows = list(csv.DictReader(open(out_root / run_id / "metrics.csv")))
    val = [(int(r["epoch"]), float(r[val_key])) for r in rows if r.get(val_key)]
    test = next(float(r[test_key]) for r in rows if r.get(test_key))
    label, baseline = BASELINES[val_key]
    return {"default": name, "wall_s": wall, "epochs": len(val), "val_first": val[0][1], "val_last": val[-1][1],
            "val_best": max(v for _, v in val), "test": test, "metric": test_key, "baseline_name": label,
            "baseline": baseline(overrides)}


def write(rows: list[dict]) -> Path:
    cores = os.cpu_count()
    lines = [
        "# Do the embedded defaults learn?",
        "",
        f"`python experiments/first_hour/run.py`, {time.strftime('%Y-%m-%d')}, {cores} CPU cores, torch "
        f"{torch.__version__}. Each command is the README's, run from scratch (random weights, procedural data, no "
        "feature cache from an earlier run). Wall time is the whole command: start-up, fit, test on the best epoch. "
        "Every metric in percent.",
        "",
        "| default | wall time | epochs | val, first epoch | val, last epoch | test (best epoch) | baseline |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| `{r['default']}` | {r['wall_s'] / 60:.1f} min | {r['epochs']} | {r['val_first']:.1f} | "
                     f"{r['val_last']:.1f} | {r['metric']} {r['test']:.1f} | {r['baseline_name']}: {r['baseline']:.1f} |")
    lines += ["", "Baselines: uninext, IoU of the box prompt itself taken as the mask; distill, mIoU of predicting "
              "background everywhere; t2i_reid, R@1 of a random ranking (4 relevant images of 128 per query)."]
    out = HERE / "results.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["uninext", "distill", "t2i_reid"], help="run one default")
    args = parser.parse_args()
    chosen = {k: v for k, v in DEFAULTS.items() if args.only is None or args.only in k}
    with tempfile.TemporaryDirectory(prefix="segexp-first-hour-") as tmp:
        # a fresh feature cache too: the teacher caches of earlier runs would make the times look better
        os.environ["SEGEXP_CACHE_DIR"] = str(Path(tmp) / "cache")
        rows = [run_default(name, *spec, Path(tmp) / "outputs") for name, spec in chosen.items()]
    for r in rows:
        print(f"{r['default']}: {r['wall_s']:.0f} s, val {r['val_first']:.1f} -> {r['val_last']:.1f}, "
              f"{r['metric']} {r['test']:.1f} ({r['baseline_name']} {r['baseline']:.1f})")
    if args.only is None:
        print("wrote", write(rows))


if __name__ == "__main__":
    main()
