"""Shared evaluation for every semantic-segmentation method: dataset-level mIoU / mAcc / aAcc + per-class table."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from segexp.metrics.segmentation import confusion_metric, scores, write_table

log = logging.getLogger(__name__)


class SemanticEvalMixin:
    """Validation, test, predict and visualiser steps for every semantic-segmentation method.

    A method sets `self.class_names`, calls `setup_eval(num_classes)` in `setup`, and implements
    `predictions(batch)`: one [h,w] class map per image at its original shape.
    """

    def predictions(self, batch) -> list[torch.Tensor]:
        raise NotImplementedError

    def validation_step(self, batch, batch_idx):
        for pred, mask in zip(self.predictions(batch), batch["mask"]):
            self.update_eval("val", pred, mask)

    def test_step(self, batch, batch_idx):
        for pred, mask in zip(self.predictions(batch), batch["mask"]):
            self.update_eval("test", pred, mask)

    def on_validation_epoch_end(self):
        self.finish_eval("val")

    def on_test_epoch_end(self):
        self.finish_eval("test")

    def predict_step(self, batch, batch_idx):
        """For SegPredictionWriter: uint8 maps at the original size, the metas and the network input."""
        return {"pred": [p.to(torch.uint8).cpu() for p in self.predictions(batch)], "meta": batch["meta"],
                "image": batch["image"]}

    @torch.no_grad()
    def visual_sample(self, batch) -> dict:
        return {"image": batch["image"], "gt": batch["mask"], "pred": torch.stack(self.predictions(batch)),
                "class_labels": dict(enumerate(self.class_names))}

    def setup_eval(self, num_classes: int, subsets: dict[str, list[int]] | None = None) -> None:
        """`subsets` (e.g. {"seen": [...], "unseen": [...]}) adds mIoU(subset) and, for seen/unseen, hIoU."""
        self.confusion = torch.nn.ModuleDict({s: confusion_metric(num_classes) for s in ("val", "test")})
        self.eval_subsets = dict(subsets or {})

    def update_eval(self, stage: str, pred: torch.Tensor, mask: torch.Tensor) -> None:
        """pred, mask: [h,w] (or [B,h,w]) at the original resolution."""
        self.confusion[stage].update(pred.reshape(-1).to(mask.device).long(), mask.reshape(-1).long())

    def finish_eval(self, stage: str) -> float:
        """Logs {stage}/miou, /macc, /aacc (percent, dataset level) and writes the per-class table; returns mIoU."""
        metric = self.confusion[stage]
        result = scores(metric.compute())
        metric.reset()
        self.log(f"{stage}/miou", result.miou, prog_bar=True, sync_dist=False)
        self.log(f"{stage}/macc", result.macc, sync_dist=False)
        self.log(f"{stage}/aacc", result.aacc, sync_dist=False)
        for name, value in subset_scores(result.iou, getattr(self, "eval_subsets", {})).items():
            self.log(f"{stage}/{name}", value, sync_dist=False)
        table = write_table(result, self.class_names, Path(self.trainer.default_root_dir) / f"{stage}_per_class_iou.csv")
        rows = result.rows(self.class_names)
        for lg in self.trainer.loggers:
            if hasattr(lg, "log_table"):
                lg.log_table(key=f"{stage}/per_class_iou", columns=["class", "iou", "acc"], data=rows)
        log.info("%s mIoU %.2f  mAcc %.2f  aAcc %.2f over %d classes, in %% (table: %s)",
                 stage, result.miou, result.macc, result.aacc, len(rows), table)
        return result.miou


def subset_scores(per_class: torch.Tensor, subsets: dict[str, list[int]]) -> dict[str, float]:
    """mIoU over each class subset of per-class IoU [C] (NaN classes left out); hIoU = 2·S·U/(S+U) when `seen`
    and `unseen` are given. Same unit as `per_class` (percent)."""
    out = {}
    for name, ids in subsets.items():
        vals = per_class.detach().float().cpu()[list(ids)]
        out[f"miou_{name}"] = float(torch.nanmean(vals)) if torch.isfinite(vals).any() else float("nan")
    if "miou_seen" in out and "miou_unseen" in out:
        s, u = out["miou_seen"], out["miou_unseen"]
        out["hiou"] = 2 * s * u / (s + u) if s + u > 0 else 0.0
    return out
