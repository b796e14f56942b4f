"""Shared LightningModule logic for open-vocabulary semantic segmenters (NACLIP, SAM3).

The segmenter is an nn.Module with `set_classes(query_names)` and `segmenter(image[1,3,H,W], ori_shape) ->
(class probabilities [C,h,w], prediction [h,w])`; evaluation, prediction PNGs and overlays come from
SemanticEvalMixin, as for every semantic-segmentation method.
"""
from __future__ import annotations

import torch
from hydra.utils import get_object

from segexp.errors import ConfigError
from segexp.methods.base import SegexpModule
from segexp.methods.segmentation_eval import SemanticEvalMixin


class OpenVocabSegModule(SemanticEvalMixin, SegexpModule):
    @classmethod
    def check_config(cls, model_cfg, cfg) -> None:
        """The words to segment must come from somewhere: the data's class list, class file or its own names."""
        super().check_config(model_cfg, cfg)
        data = cfg.get("data")
        if data is None or not data.get("_target_"):
            return
        has_names = getattr(get_object(data._target_), "has_class_names", None)
        if callable(has_names) and not has_names(data):
            raise ConfigError(f"{cls.__name__} segments by words, and this data config names no classes: pass "
                              f"'data.class_names=[cat,dog|puppy,grass]' (quoted; synonyms separated by |; a "
                              f"background class is added unless data.background=none) or data.class_file=FILE "
                              f"(one class per line, synonyms separated by ', ').")

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
