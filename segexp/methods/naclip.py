"""NAClipModule: training-free open-vocabulary segmentation (validate / test / predict)."""
from __future__ import annotations

from segexp.methods.open_vocab import OpenVocabSegModule
from segexp.models.clip import clip_depth
from segexp.models.naclip import NACLIPSegmenter


class NAClipModule(OpenVocabSegModule):
    training_free = True
    dense_methods = True

    def __init__(self, segmenter: NACLIPSegmenter):
        super().__init__(segmenter)
        self.save_hyperparameters(logger=False, ignore=["segmenter"])

    @classmethod
    def vit_depth(cls, model_cfg):
        return clip_depth(model_cfg["segmenter"]["clip_name"])

    def configure_optimizers(self):
        return None
