"""Sam3Module: SAM3 as a text-prompted semantic segmenter; evaluation like NACLIP, optional mask-decoder fine-tuning.

Fine-tuning (stage=fit) trains the mask decoder (and LoRA adapters on the backbone's q/k/v when
`model.segmenter.lora_rank>0`) on SAM3's per-prompt semantic head: for every class present in an image, the
prompt's `semantic_seg` logits are fitted to that class's mask with `loss=focal_dice` (20:1, as SAM).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from segexp.losses import FocalDiceLoss
from segexp.methods.open_vocab import OpenVocabSegModule
from segexp.models.sam3 import Sam3Segmenter, sam3_depth


class Sam3Module(OpenVocabSegModule):
    predicts_untrained = True  # SAM3 segments by words as released; fine-tuning is optional
    def __init__(self, segmenter: Sam3Segmenter, loss: FocalDiceLoss | None = None, optim: Mapping[str, Any] | None = None):
        super().__init__(segmenter)
        self.save_hyperparameters(logger=False, ignore=["segmenter", "loss", "optim"])
        self.loss, self.optim = loss, optim
        if loss is not None:
            self.segmenter.model.requires_grad_(False)
            for ps in segmenter.trainable_parameters().values():
                for p in ps:
                    p.requires_grad_(True)

    @classmethod
    def vit_depth(cls, model_cfg):
        return sam3_depth(model_cfg["segmenter"]["size"])

    def training_step(self, batch, batch_idx):
        if self.loss is None:
            raise RuntimeError("fine-tuning SAM3 needs a loss: loss=focal_dice")
        seg = self.segmenter
        seg.model.train()
        total, n = 0.0, 0
        for image, mask in zip(batch["image"], batch["mask"]):
            present = [i for i, c in enumerate(seg.prompt_classes) if (mask == c).any()]
            if not present:
                continue
            out = seg.prompt_outputs(image[None], torch.tensor(present, device=image.device))
            logits = F.interpolate(out.semantic_seg, size=mask.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
            target = torch.stack([(mask == seg.prompt_classes[i]).long() for i in present])
            target[:, mask == 255] = 255
            total = total + self.loss(logits, target)
            n += 1
        loss = total / max(n, 1)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["meta"]))
        return loss

    def configure_optimizers(self):
        groups = {k: v for k, v in self.segmenter.trainable_parameters().items() if v}
        return self.build_optimizer(self.optim, groups)
