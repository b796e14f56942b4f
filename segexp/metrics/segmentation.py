"""Dataset-level segmentation scores as MMSegmentation's `IoUMetric` computes them, in percent.

One torchmetrics confusion matrix is accumulated over the whole dataset (the sum of mmseg's per-image
intersect / union / pred / label areas); pixels labelled `ignore_index` are dropped before counting.
From it, per class c:
    IoU_c = I_c / (P_c + L_c - I_c)    NaN when the class is neither predicted nor labelled
    Acc_c = I_c / L_c                  NaN when the class has no ground-truth pixel
and aAcc = Σ I_c / Σ L_c. mIoU and mAcc are NaN-means: a class predicted but absent from the ground truth
gets IoU 0 and counts in mIoU, but has no accuracy. (`torchmetrics.segmentation.MeanIoU` averages per image
instead and does not reproduce the benchmark numbers.) Every score is in percent, like every other metric
segexp logs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torchmetrics.classification import MulticlassConfusionMatrix


def confusion_metric(num_classes: int, ignore_index: int = 255) -> MulticlassConfusionMatrix:
    """Accumulates [C_gt, C_pred] pixel counts; update(pred [N,...], target [N,...]) with class indices."""
    return MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)


def _nanmean(values: torch.Tensor) -> float:
    return float(torch.nanmean(values)) if torch.isfinite(values).any() else float("nan")


@dataclass(frozen=True)
class SegScores:
    """Per-class IoU / accuracy [C] and their summaries, all in percent (NaN: undefined, see module doc)."""

    iou: torch.Tensor
    acc: torch.Tensor
    aacc: float

    @property
    def miou(self) -> float:
        return _nanmean(self.iou)

    @property
    def macc(self) -> float:
        return _nanmean(self.acc)

    def rows(self, class_names: Sequence[str]) -> list[list]:
        """[class, IoU, Acc] per class; classes beyond `class_names` are named by their index."""
        names = list(class_names) + [str(i) for i in range(len(class_names), len(self.iou))]
        return [[names[i], float(u), float(a)] for i, (u, a) in enumerate(zip(self.iou, self.acc))]


def scores(confusion: torch.Tensor) -> SegScores:
    """confusion [C,C] (rows ground truth, columns prediction) → SegScores in percent."""
    cm = confusion.detach().double().cpu()
    inter = cm.diagonal()
    label, pred = cm.sum(1), cm.sum(0)
    union = label + pred - inter
    nan = torch.full_like(inter, float("nan"))
    iou = torch.where(union > 0, inter / union.clamp_min(1), nan) * 100.0
    acc = torch.where(label > 0, inter / label.clamp_min(1), nan) * 100.0
    total = float(label.sum())
    aacc = float(inter.sum()) / total * 100.0 if total > 0 else float("nan")
    return SegScores(iou.float(), acc.float(), aacc)


def _cell(v: float) -> str:
    return "" if math.isnan(v) else f"{v:.4f}"


def write_table(result: SegScores, class_names: Sequence[str], path) -> Path:
    """Per-class IoU and accuracy (percent) as CSV, with the mIoU / mAcc / aAcc summary rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["class,iou,acc"] + [f"{n},{_cell(u)},{_cell(a)}" for n, u, a in result.rows(class_names)]
    lines += [f"mIoU,{_cell(result.miou)},", f"mAcc,,{_cell(result.macc)}", f"aAcc,,{_cell(result.aacc)}"]
    path.write_text("\n".join(lines) + "\n")
    return path
