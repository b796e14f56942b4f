"""Text→image ReID evaluation at ICFG-PEDES scale: 20,000 queries × 20,000 gallery images.

`rank_metrics_from_features` computes cosine similarities, sorts and scores one chunk of queries at a time, so
memory stays O(chunk × G) instead of the 1.6 GB Q×G matrix (plus 3.2 GB of int64 sort indices). Each chunk
size runs in its own subprocess so that peak RSS is measured from a clean start. Writes reid_eval.md.
"""
from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

OUT = Path(__file__).with_name("reid_eval.md")
Q = G = 20_000
DIM, IDS = 256, 1_000


def run_one(chunk: int) -> dict:
    from segexp.metrics.retrieval import rank_metrics_from_features

    g = torch.Generator().manual_seed(0)
    ids = torch.arange(G) % IDS
    centres = torch.randn(IDS, DIM, generator=g)
    gallery = centres[ids] + 2.0 * torch.randn(G, DIM, generator=g)
    queries = centres[ids] + 2.0 * torch.randn(Q, DIM, generator=g)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    res = rank_metrics_from_features(queries, gallery, ids, ids, chunk=chunk)
    secs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"chunk": chunk, "seconds": secs, "peak_mb": peak, "extra_mb": peak - base, **res}


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(run_one(int(sys.argv[1]))))
        return
    rows = []
    for chunk in (256, 1024, 4096):
        out = subprocess.run([sys.executable, __file__, str(chunk)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    lines = [
        "# ReID evaluation: 20k × 20k text→image ranking (CPU)",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}. {Q:,} queries × {G:,} "
        f"gallery, {DIM}-d features, {IDS:,} identities (20 relevant images per query); R@1/5/10, mAP and mINP together.",
        "",
        "| queries per chunk | time (s) | peak RSS (MB) | above the inputs (MB) | R1 | mAP | mINP |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['chunk']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['extra_mb']:.0f} | {r['R1']:.2f} | {r['mAP']:.2f} | "
              f"{r['mINP']:.2f} |" for r in rows]
    lines += ["", f"The unchunked Q×G similarity matrix alone would take {Q * G * 4 / 2**30:.1f} GiB (fp32), its argsort "
              f"indices {Q * G * 8 / 2**30:.1f} GiB. Metrics are identical across chunk sizes.", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
