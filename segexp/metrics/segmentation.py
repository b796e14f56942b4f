"""Dataset-level mIoU as mmseg computes it, on torchmetrics.

`MulticlassJaccardIndex(average="none", zero_division=nan)` accumulates one confusion matrix over the
whole dataset; classes with an empty union are NaN and left out of the mean (mmseg's nanmean). A class
predicted but absent from the ground truth gets IoU 0 and counts. (`torchmetrics.segmentation.MeanIoU`
averages per image instead and does not reproduce the benchmark numbers.)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torchmetrics.classification import MulticlassJaccardIndex


def per_class_iou_metric(num_classes: int, ignore_index: int = 255) -> MulticlassJaccardIndex:
    return MulticlassJaccardIndex(num_classes, average="none", ignore_index=ignore_index, zero_division=float("nan"))


def summarise(per_class: torch.Tensor, class_names: Sequence[str]) -> tuple[float, list[list]]:
    """(mIoU in [0,1] over classes present, rows [class, IoU or NaN]) from per-class IoU."""
    values = per_class.detach().float().cpu()
    miou = float(torch.nanmean(values)) if torch.isfinite(values).any() else float("nan")
    names = list(class_names) + [str(i) for i in range(len(class_names), len(values))]
    return miou, [[names[i], float(v)] for i, v in enumerate(values)]


def write_table(rows: list[list], path, miou: float) -> None:
    """Per-class IoU as CSV (the table artifact kept in the run dir)."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["class,iou"] + [f"{n},{'' if math.isnan(v) else f'{v:.6f}'}" for n, v in rows] + [f"mIoU,{miou:.6f}"]
    path.write_text("\n".join(lines) + "\n")
