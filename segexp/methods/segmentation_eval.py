"""Shared evaluation for every semantic-segmentation method: dataset-level mIoU + per-class table."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from segexp.metrics import per_class_iou_metric, summarise, write_table

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
        self.iou = torch.nn.ModuleDict({s: per_class_iou_metric(num_classes) for s in ("val", "test")})
        self.eval_subsets = dict(subsets or {})

    def update_eval(self, stage: str, pred: torch.Tensor, mask: torch.Tensor) -> None:
        """pred, mask: [h,w] (or [B,h,w]) at the original resolution."""
        self.iou[stage].update(pred.reshape(1, -1).to(mask.device), mask.reshape(1, -1).long())

    def finish_eval(self, stage: str) -> float:
        metric = self.iou[stage]
        per_class = metric.compute()
        miou, rows = summarise(per_class, self.class_names)
        metric.reset()
        self.log(f"{stage}/miou", miou * 100.0, prog_bar=True, sync_dist=False)
        for name, value in subset_scores(per_class, getattr(self, "eval_subsets", {})).items():
            self.log(f"{stage}/{name}", value * 100.0, sync_dist=False)
        out_dir = Path(self.trainer.default_root_dir)
        write_table(rows, out_dir / f"{stage}_per_class_iou.csv", miou)
        for lg in self.trainer.loggers:
            if hasattr(lg, "log_table"):
                lg.log_table(key=f"{stage}/per_class_iou", columns=["class", "iou"], data=rows)
        log.info("%s mIoU %.2f over %d classes (table: %s)", stage, miou * 100, len(rows), out_dir / f"{stage}_per_class_iou.csv")
        return miou


def subset_scores(per_class: torch.Tensor, subsets: dict[str, list[int]]) -> dict[str, float]:
    """mIoU over each class subset (NaN classes left out); hIoU = 2·S·U/(S+U) when `seen` and `unseen` are given."""
    out = {}
    for name, ids in subsets.items():
        vals = per_class.detach().float().cpu()[list(ids)]
        out[f"miou_{name}"] = float(torch.nanmean(vals)) if torch.isfinite(vals).any() else float("nan")
    if "miou_seen" in out and "miou_unseen" in out:
        s, u = out["miou_seen"], out["miou_unseen"]
        out["hiou"] = 2 * s * u / (s + u) if s + u > 0 else 0.0
    return out
