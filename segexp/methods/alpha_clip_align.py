"""AlphaClipAlignModule: train a UNINEXT-style encoder's seg head and align its region embedding to a frozen Alpha-CLIP."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torchmetrics.classification import BinaryJaccardIndex

from segexp.attention import AttentionSpec
from segexp.losses import SegAlignLoss
from segexp.methods.base import SegexpModule
from segexp.models import AlphaCLIPVisual, RegionAlignNet, clip_vision_dims
from segexp.models.feature_cache import FeatureCache, tensor_fingerprint

log = logging.getLogger(__name__)


class AlphaClipAlignModule(SegexpModule):
    def __init__(
        self,
        net: RegionAlignNet,
        teacher: AlphaCLIPVisual,
        loss: SegAlignLoss,
        optim: Mapping[str, Any],
        attention: AttentionSpec | None = None,
        cache_dir: str | None = None,
    ):
        super().__init__()
        # objects (modules, partial optimisers) stay out of hparams: checkpoints must load with weights_only=True;
        # the resolved config goes into the checkpoint instead (SegexpModule.on_save_checkpoint)
        self.save_hyperparameters(logger=False, ignore=["net", "teacher", "loss", "optim", "attention"])
        self.net, self.teacher, self.loss = net, teacher, loss
        self.optim = optim
        self.setup_attention(net.encoder, attention)
        self.val_iou = BinaryJaccardIndex(ignore_index=255)
        self.test_iou = BinaryJaccardIndex(ignore_index=255)
        self.cache_dir = cache_dir
        self.teacher_cache: FeatureCache | None = None

    @classmethod
    def vit_depth(cls, model_cfg):
        return clip_vision_dims(model_cfg["net"]["clip_name"])["depth"]

    # ----------------------------------------------------------------- teacher (+ cache)
    def setup(self, stage: str) -> None:
        if self.teacher_cache is not None or not (self.teacher.cache and self.loss.needs_teacher):
            return
        dm = getattr(self.trainer, "datamodule", None)
        deterministic = getattr(dm, "deterministic_transforms", True)
        if not deterministic:
            log.warning("teacher cache disabled: the training transforms are random, cached embeddings would be wrong")
            return
        fp = tensor_fingerprint(self.teacher, extra=self.teacher.source)
        path = Path(self.cache_dir) / f"alpha_clip_teacher-{fp}.safetensors" if self.cache_dir else None
        self.teacher_cache = FeatureCache(path, fp)

    @torch.no_grad()
    def teacher_embed(self, batch: Mapping[str, Any]) -> torch.Tensor:
        keys = [m["key"] for m in batch["meta"]]
        if self.teacher_cache is not None:
            hit = self.teacher_cache.get(keys)
            if hit is not None:
                return hit.to(self.device)
        emb = self.teacher(batch["image"], batch["alpha"])
        if self.teacher_cache is not None:
            self.teacher_cache.put(keys, emb)
        return emb

    def on_train_epoch_end(self) -> None:
        if self.teacher_cache is not None:
            self.teacher_cache.flush()

    # ----------------------------------------------------------------- steps
    def _shared_step(self, batch):
        out = self.net(batch["image"], batch["alpha"])
        teacher = self.teacher_embed(batch) if self.loss.needs_teacher else None
        losses = self.loss(out["seg_logits"], batch["target_mask"], out["region_embed"], teacher)
        if teacher is not None:
            losses["cos"] = F.cosine_similarity(out["region_embed"].detach(), teacher, dim=-1).mean()
        return out, losses

    def training_step(self, batch, batch_idx):
        _, losses = self._shared_step(batch)
        self.log_dict_prefixed("train", losses, prog_bar=False, on_step=True, on_epoch=True, batch_size=len(batch["meta"]))
        self.log("train/loss", losses["loss_total"], prog_bar=True, batch_size=len(batch["meta"]))
        return losses["loss_total"]

    def _eval_step(self, batch, stage: str, metric: BinaryJaccardIndex):
        out, losses = self._shared_step(batch)
        metric.update((out["seg_logits"][:, 0] > 0).long(), batch["target_mask"])
        self.log_epoch_means(stage, losses, batch_size=len(batch["meta"]))

    def _log_iou(self, stage: str, metric: BinaryJaccardIndex) -> None:
        """Dataset-level foreground IoU over every region of the epoch, in percent."""
        self.log(f"{stage}/iou", metric.compute() * 100.0, prog_bar=True, sync_dist=False)
        metric.reset()

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", self.val_iou)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", self.test_iou)

    def on_validation_epoch_end(self) -> None:
        self._log_iou("val", self.val_iou)

    def on_test_epoch_end(self) -> None:
        self._log_iou("test", self.test_iou)

    def predict_step(self, batch, batch_idx):
        out = self.net(batch["image"], batch["alpha"])
        return {"pred": (out["seg_logits"][:, 0] > 0).to(torch.uint8), "meta": batch["meta"]}

    @torch.no_grad()
    def visual_sample(self, batch) -> dict:
        """For the visualiser: images, ground truth, prediction, label names."""
        out = self.net(batch["image"], batch["alpha"])
        return {"image": batch["image"], "gt": batch["target_mask"], "pred": (out["seg_logits"][:, 0] > 0).long(),
                "prompt": batch["alpha"][:, 0], "class_labels": {0: "background", 1: "region"}}

    def configure_optimizers(self):
        return self.build_optimizer(self.optim, self.net.param_groups())

    # ----------------------------------------------------------------- the frozen teacher stays out of checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("teacher.")}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"].update({f"teacher.{k}": v for k, v in self.teacher.state_dict().items()})
