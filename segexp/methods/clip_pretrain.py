"""CLIPPretrainModule: a small open_clip CLIP trained by segexp on synthetic image–caption pairs.

It gives every other method a text-aligned teacher offline. Logged: contrastive loss, the logit scale,
in-batch image↔text R@1, held-out R@1, and zero-shot accuracy on held-out single-object images with one
template and with the template ensemble (so the ensembling gain is measured). At the end of fit the weights
are exported in open_clip format, which `model.*.pretrained=<path>` loads like OpenAI weights.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from segexp.atomic import atomic_path
from segexp.losses import SymmetricContrastiveLoss
from segexp.methods.base import SegexpModule
from segexp.metrics.retrieval import recall_at_1
from segexp.models.clip import CONFIG_DIR, create_clip, text_features

log = logging.getLogger(__name__)


def dominant_class(mask: torch.Tensor) -> torch.Tensor:
    """[B,H,W] semantic masks of single-object images → [B] class of the object."""
    m = mask.flatten(1).clone()
    m[(m == 0) | (m == 255)] = -1
    counts = torch.stack([torch.bincount(row[row >= 0], minlength=256) for row in m])
    return counts.argmax(1)


class CLIPPretrainModule(SegexpModule):
    def __init__(
        self,
        clip_name: str,
        loss: SymmetricContrastiveLoss,
        optim: Mapping[str, Any],
        zero_shot_template: str = "a photo of a {}.",
        zero_shot_ensemble: Sequence[str] = ("a photo of a {}.",),
        export_path: str | None = None,
        pretrained: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["loss", "optim"])
        import open_clip

        self.clip_name = clip_name
        self.model = create_clip(clip_name, pretrained).train()
        self.model.requires_grad_(True)
        self.tokenizer = open_clip.get_tokenizer(clip_name)
        self.loss, self.optim = loss, optim
        self.templates_single = [zero_shot_template]
        self.templates_ensemble = list(zero_shot_ensemble)
        self.export_path = export_path
        self._val: dict[int, list] = {}

    def encode(self, images: torch.Tensor, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        img = F.normalize(self.model.encode_image(images), dim=-1)
        txt = F.normalize(self.model.encode_text(self.tokenizer(list(captions)).to(images.device)), dim=-1)
        return img, txt

    def training_step(self, batch, batch_idx):
        img, txt = self.encode(batch["image"], batch["caption"])
        loss = self.loss(img, txt, self.model.logit_scale)
        i2t, t2i = recall_at_1(img.detach() @ txt.detach().t())
        bs = len(batch["caption"])
        self.log_dict({"train/loss": loss, "train/r1_i2t_batch": i2t, "train/r1_t2i_batch": t2i,
                       "train/logit_scale": self.model.logit_scale.exp()}, prog_bar=True, batch_size=bs)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.loss.clamp_(self.model.logit_scale)

    # ------------------------------------------------------------------ held-out retrieval + zero-shot
    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        if dataloader_idx == 0:
            self._val.setdefault(0, []).append(self.encode(batch["image"], batch["caption"]))
        else:
            img = F.normalize(self.model.encode_image(batch["image"]), dim=-1)
            self._val.setdefault(1, []).append((img, dominant_class(batch["mask"]).to(img.device)))

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self.validation_step(batch, batch_idx, dataloader_idx)

    def on_validation_epoch_end(self):
        self._finish_eval("val")

    def on_test_epoch_end(self):
        self._finish_eval("test")

    def _finish_eval(self, stage: str):
        if 0 in self._val:
            img = torch.cat([a for a, _ in self._val[0]])
            txt = torch.cat([b for _, b in self._val[0]])
            i2t, t2i = recall_at_1(img @ txt.t())
            self.log_dict({f"{stage}/r1_i2t": i2t, f"{stage}/r1_t2i": t2i, f"{stage}/r1": (i2t + t2i) / 2})
        if 1 in self._val:
            img = torch.cat([a for a, _ in self._val[1]])
            labels = torch.cat([b for _, b in self._val[1]])
            names = self.trainer.datamodule.class_names[1:]  # class 0 is the background
            for tag, templates in (("single", self.templates_single), ("ensemble", self.templates_ensemble)):
                was = self.model.training
                self.model.eval()
                classes = text_features(self.model, self.tokenizer, names, templates).to(img.device)
                self.model.train(was)
                acc = 100.0 * float(((img @ classes.t()).argmax(1) + 1 == labels).float().mean())
                self.log(f"{stage}/zeroshot_acc_{tag}", acc)
        self._val = {}

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim < 2 or "logit_scale" in name or "embedding" in name else decay).append(p)
        return self.build_optimizer(self.optim, {"decay": decay, "no_decay": no_decay})

    # ------------------------------------------------------------------ export in open_clip format
    def on_train_end(self) -> None:
        if not (self.export_path and self.trainer.is_global_zero):
            return
        target = Path(self.export_path).expanduser()
        smoke = smoke_run_reason(self.trainer)
        if smoke:  # a smoke run must not replace the export that the *_tinyclip presets load
            target = Path(self.trainer.default_root_dir) / "export" / target.name
            log.warning("%s: the CLIP is exported into the run dir (%s), not over %s", smoke, target, self.export_path)
        path = export_open_clip(self.model, self.clip_name, target)
        log.info("tiny CLIP exported (open_clip format) to %s", path)


def smoke_run_reason(trainer) -> str | None:
    """Why this fit is a shortened run (fast_dev_run, max_steps, limit_train_batches), or None for a full one."""
    if trainer.fast_dev_run:
        return "fast_dev_run"
    if trainer.max_steps not in (-1, None):
        return f"trainer.max_steps={trainer.max_steps}"
    limit = trainer.limit_train_batches
    if limit is not None and limit != 1.0:
        return f"trainer.limit_train_batches={limit}"
    return None


def export_open_clip(model, clip_name: str, path: str | Path) -> Path:
    """Write `model.state_dict()` as safetensors plus the open_clip model config beside it, atomically."""
    from safetensors.torch import save_file

    path = Path(path).expanduser()
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp),
                  metadata={"open_clip_model": clip_name})
    cfg_src = CONFIG_DIR / f"{clip_name}.json"
    if cfg_src.is_file():
        (path.parent / f"{clip_name}.json").write_text(json.dumps(json.loads(cfg_src.read_text()), indent=2))
    return path
