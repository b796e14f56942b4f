"""SAM3 vision-backbone forward time with and without neighbour-aware layers (CPU), and Ω for its 72x72 grid.

Writes experiments/bench/sam3_backbone.md. The full (released-size, 446 M-parameter) trunk is timed at 336 px;
at 1008 px one CPU forward takes minutes, so it is left out.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from segexp.attention import AttentionSpec, clear_prior_cache, install, neighbour_prior
from segexp.models.sam3 import sam3_config

OUT = Path(__file__).with_name("sam3_backbone.md")


def backbone(size: str, image_size: int):
    from transformers import Sam3ViTModel

    torch.manual_seed(0)
    return Sam3ViTModel(sam3_config(size, image_size).vision_config.backbone_config).eval()


def timed(model, image_size: int, repeats: int) -> float:
    x = torch.randn(1, 3, image_size, image_size)
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    rows = []
    for size, image_size, repeats in (("tiny", 336, 5), ("tiny", 1008, 3), ("base", 336, 1)):
        plain = timed(backbone(size, image_size), image_size, repeats)
        model = backbone(size, image_size)
        report = install(model, AttentionSpec(strategy="neighbour", arch="vanilla", layers=[5, 6, 7], std=2.0))
        nbr = timed(model, image_size, repeats)
        grids = ", ".join(line.split("(")[-1].rstrip(")") for line in report)
        rows.append((size, image_size, plain, nbr, grids))
    clear_prior_cache()
    t = time.perf_counter()
    neighbour_prior((72, 72), 2.0)
    omega_ms = (time.perf_counter() - t) * 1e3
    lines = ["# SAM3 backbone forward with neighbour-aware layers (CPU)", "",
             f"{torch.get_num_threads()} threads, {platform.machine()}, torch {torch.__version__}, random weights, batch 1, "
             "median of the repeats. Neighbour layers: blocks 5, 6 (windowed) and 7 (global), σ = 2.", "",
             "| config | input | plain (s) | with neighbour layers (s) | ratio | modified grids |", "|---|---|---|---|---|---|"]
    for size, image_size, plain, nbr, grids in rows:
        lines.append(f"| {size} | {image_size} | {plain:.3f} | {nbr:.3f} | {nbr / plain:.2f}x | {grids} |")
    lines += ["| base | 1008 | not run: minutes per CPU forward (446 M parameters, 72x72 tokens) | | | |", "",
              f"Ω for the 72x72 global grid (fresh build): {omega_ms:.1f} ms.", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
