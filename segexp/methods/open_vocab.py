"""Shared LightningModule logic for open-vocabulary semantic segmenters (NACLIP, SAM3).

The segmenter is an nn.Module with `set_classes(query_names)` and `segmenter(image[1,3,H,W], ori_shape) ->
(class probabilities [C,h,w], prediction [h,w])`; evaluation (dataset-level mIoU, per-class table), prediction
PNGs and overlays are the same for all of them.
"""
from __future__ import annotations

import torch

from segexp.methods.base import SegexpModule
from segexp.methods.segmentation_eval import SemanticEvalMixin


class OpenVocabSegModule(SemanticEvalMixin, SegexpModule):
    def __init__(self, segmenter: torch.nn.Module):
        super().__init__()
        self.segmenter = segmenter
        self.attention_report = getattr(segmenter, "attention_report", [])
        self.class_names: list[str] = []

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        self.class_names = dm.class_names
        self.segmenter.set_classes(dm.query_names)
        self.setup_eval(len(self.class_names))

    def _segment(self, batch):
        """Per image (sizes differ): (probs [C,h,w], pred [h,w]) at the original shape."""
        for i, meta in enumerate(batch["meta"]):
            image = batch["image"][i]
            yield self.segmenter(image[None].to(self.device), meta.get("ori_shape") or image.shape[-2:])

    def validation_step(self, batch, batch_idx):
        for (_, pred), mask in zip(self._segment(batch), batch["mask"]):
            self.update_eval("val", pred, mask)

    def test_step(self, batch, batch_idx):
        for (_, pred), mask in zip(self._segment(batch), batch["mask"]):
            self.update_eval("test", pred, mask)

    def on_validation_epoch_end(self):
        self.finish_eval("val")

    def on_test_epoch_end(self):
        self.finish_eval("test")

    def predict_step(self, batch, batch_idx):
        return {"pred": [pred.to(torch.uint8).cpu() for _, pred in self._segment(batch)], "meta": batch["meta"],
                "image": batch["image"]}

    @torch.no_grad()
    def visual_sample(self, batch) -> dict:
        preds = [pred for _, pred in self._segment(batch)]
        return {"image": batch["image"], "gt": batch["mask"], "pred": torch.stack(preds),
                "class_labels": dict(enumerate(self.class_names))}
