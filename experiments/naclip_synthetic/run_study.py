"""Study: NACLIP's attention strategies with segexp's tiny CLIP on held-out synthetic_shapes scenes.

Runs the exact commands listed in README.md of this folder (two Hydra multiruns), reads each job's resolved
config and test mIoU, and writes results.md (table) and miou.png (plot) here. Needs `make tiny-clip` first.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
#: where segexp.run writes run dirs: SEGEXP_OUTPUT_ROOT as the CLI reads it (relative to the repo, like the CLI's cwd)
OUTPUTS = ROOT / os.environ.get("SEGEXP_OUTPUT_ROOT", "outputs")
SWEEPS = {
    "strategies": ["attention=neighbour,csa,qq,value,vanilla"],
    "neighbour_std": ["attention=neighbour", "attention.std=1,2,5,10"],
}
BASE = ["experiment=naclip_tinyclip", "stage=test", "logger=csv", "callbacks=none"]


def newest(folder: Path, pattern: str) -> Path:
    """The newest earlier run matching `pattern` (for --report-only), or a clear exit naming where it looked."""
    found = sorted(folder.glob(pattern))
    if not found:
        raise SystemExit(f"run_study: no earlier run {folder / pattern} to reuse (SEGEXP_OUTPUT_ROOT="
                         f"{os.environ.get('SEGEXP_OUTPUT_ROOT', 'outputs')}); run without --report-only first.")
    return found[-1]


def command(sweep: str) -> list[str]:
    return [sys.executable, "-m", "segexp.run", "-m", *BASE, *SWEEPS[sweep]]


def run_sweep(sweep: str, reuse: bool) -> list[dict]:
    if reuse:  # the newest finished sweep of this kind
        sweep_dir = newest(OUTPUTS / "multirun" / "naclip_synthetic", f"{sweep}-*")
    else:
        env = dict(os.environ, SEGEXP_RUN_ID=f"naclip_synthetic/{sweep}-{time.strftime('%Y%m%d-%H%M%S')}")
        subprocess.run(command(sweep), cwd=ROOT, env=env, check=True)
        sweep_dir = OUTPUTS / "multirun" / env["SEGEXP_RUN_ID"]
    rows = []
    for job in sorted(sweep_dir.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        if not (job / "config.yaml").is_file():
            continue
        cfg = OmegaConf.load(job / "config.yaml")
        metrics = list(csv.DictReader(open(job / "metrics.csv")))
        miou = next(float(r["test/miou"]) for r in metrics if r.get("test/miou"))
        att = cfg.model.segmenter.attention
        rows.append({"sweep": sweep, "strategy": att.strategy, "arch": att.arch, "std": att.std, "miou": miou,
                     "dir": str(job.relative_to(ROOT)) if job.is_relative_to(ROOT) else str(job)})
    return rows


def random_baseline(reuse: bool) -> float:
    """The same data and settings with a randomly initialised CLIP of the same shape."""
    if reuse:
        job = newest(OUTPUTS / "naclip_synthetic", "random-*")
    else:
        env = dict(os.environ, SEGEXP_RUN_ID=f"naclip_synthetic/random-{time.strftime('%Y%m%d-%H%M%S')}")
        subprocess.run([sys.executable, "-m", "segexp.run", *BASE, "model.segmenter.pretrained=null"], cwd=ROOT, env=env, check=True)
        job = OUTPUTS / env["SEGEXP_RUN_ID"]
    return next(float(r["test/miou"]) for r in csv.DictReader(open(job / "metrics.csv")) if r.get("test/miou"))


def reading(rows: list[dict], baseline: float) -> list[str]:
    """What the numbers say, computed from them."""
    strat = {r["strategy"]: r["miou"] for r in rows if r["sweep"] == "strategies"}
    best = max(strat, key=strat.get)
    sig = [r["miou"] for r in rows if r["sweep"] == "neighbour_std"]
    return [
        "Reading:",
        f"* Best strategy: {best} ({strat[best]:.2f}); NACLIP (neighbour) {strat['neighbour']:.2f} vs plain CLIP (vanilla) "
        f"{strat['vanilla']:.2f}; every trained-CLIP number is {min(strat.values()) / max(baseline, 1e-9):.1f}-"
        f"{max(strat.values()) / max(baseline, 1e-9):.1f}x the random-weights baseline ({baseline:.2f}).",
        f"* σ moves NACLIP by only {max(sig) - min(sig):.2f} mIoU over σ = 1..10 (windows of 8x8 tokens).",
        "* All absolute numbers are small: this tiny CLIP was trained with a CLS-token objective on 64 px scenes for "
        "~15 CPU minutes, so its patch tokens carry little class information, and the training-free recipes (which "
        "only re-route the last block's attention) have little to re-route. The ranking between strategies is "
        "therefore within noise of a near-null result; it implies that meaningful offline comparisons need a tiny "
        "CLIP whose dense tokens are text-aligned (longer training, or dense/patch-level objectives).",
    ]


def main() -> None:
    reuse = "--report-only" in sys.argv  # rebuild the table and plot from the newest finished runs
    rows = [r for sweep in SWEEPS for r in run_sweep(sweep, reuse)]
    baseline = random_baseline(reuse)
    lines = ["# NACLIP strategies with the tiny CLIP on held-out synthetic_shapes", "",
             "Test mIoU (%) on 64 held-out scenes (seed 1234, 1-3 objects, 128 px, sliding windows 64/32), "
             "segexp-tinyclip from `make tiny-clip`. Generated by `python experiments/naclip_synthetic/run_study.py`.", "",
             "| sweep | strategy | arch | σ | mIoU |", "|---|---|---|---|---|"]
    for r in rows:
        std = f"{r['std']:g}" if r["strategy"] in ("neighbour", "gaussian") else "-"
        lines.append(f"| {r['sweep']} | {r['strategy']} | {r['arch']} | {std} | {r['miou']:.2f} |")
    lines += ["", f"Random-weights CLIP of the same shape (neighbour, σ 5): {baseline:.2f} mIoU.", ""]
    lines += reading(rows, baseline) + ["", "Commands:", ""]
    lines += ["```bash"] + [" ".join(["python", "-m", "segexp.run", "-m", *BASE, *SWEEPS[s]]) for s in SWEEPS]
    lines += [" ".join(["python", "-m", "segexp.run", *BASE, "model.segmenter.pretrained=null"]), "```", ""]
    (HERE / "results.md").write_text("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    strat = [r for r in rows if r["sweep"] == "strategies"]
    a.bar([r["strategy"] for r in strat], [r["miou"] for r in strat], color="tab:blue")
    a.axhline(baseline, color="grey", ls="--", label="random CLIP")
    a.set_ylabel("test mIoU (%)")
    a.set_title("last-block strategy")
    a.legend(fontsize=8)
    sig = sorted((r for r in rows if r["sweep"] == "neighbour_std"), key=lambda r: r["std"])
    b.plot([r["std"] for r in sig], [r["miou"] for r in sig], marker="o")
    b.set_xscale("log")
    b.set_xlabel("σ (patches)")
    b.set_title("neighbour: Gaussian width")
    fig.tight_layout()
    fig.savefig(HERE / "miou.png", dpi=100)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
