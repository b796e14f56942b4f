"""Shared LightningModule logic for open-vocabulary semantic segmenters (NACLIP, SAM3).

The segmenter is an nn.Module with `set_classes(query_names)` and `segmenter(image[1,3,H,W], ori_shape) ->
(class probabilities [C,h,w], prediction [h,w])`; evaluation, prediction PNGs and overlays come from
SemanticEvalMixin, as for every semantic-segmentation method.
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

    @torch.no_grad()
    def predictions(self, batch) -> list[torch.Tensor]:
        """Per image (sizes differ): the prediction [h,w] at the original shape."""
        preds = []
        for i, meta in enumerate(batch["meta"]):
            image = batch["image"][i]
            preds.append(self.segmenter(image[None].to(self.device), meta.get("ori_shape") or image.shape[-2:])[1])
        return preds
