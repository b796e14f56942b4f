"""DistillModule: distil a frozen CLIP (CLIPTeacher) into a light timm SegStudent; evaluated by mIoU.

The student is built in `setup` (its class count comes from the data) or, for `stage=predict` on an
unlabelled folder, from the class names stored in the checkpoint. Teacher outputs are cached on disk (fp16,
keyed by teacher weights, attention, dataset and train view) when the training view is cacheable.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from segexp.errors import ConfigError
from segexp.losses.distill import DistillLoss, present_pairs
from segexp.methods.base import SegexpModule
from segexp.methods.segmentation_eval import SemanticEvalMixin
from segexp.models.clip import clip_depth
from segexp.models.clip_teacher import CLIPTeacher
from segexp.models.feature_cache import FeatureCache, tensor_fingerprint
from segexp.models.seg_student import SegStudent

log = logging.getLogger(__name__)

CLASSIFIERS = ("head", "text")


class DistillModule(SemanticEvalMixin, SegexpModule):
    def __init__(
        self,
        student: Callable[..., SegStudent],
        teacher: CLIPTeacher,
        loss: DistillLoss,
        optim: Mapping[str, Any],
        classifier: str = "head",
        unseen_classes: Sequence[str] = (),
        text_logit_scale: float = 50.0,
        cache: bool = True,
        cache_dir: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["student", "teacher", "loss", "optim"])
        if classifier not in CLASSIFIERS:
            raise ValueError(f"model.classifier must be one of {CLASSIFIERS}, got {classifier!r}")
        self.student_fn, self.student = student, None
        self.teacher, self.loss, self.optim = teacher, loss, optim
        self.attention_report = teacher.attention_report  # the attention group acts on the teacher's dense path
        self.classifier, self.unseen_names = classifier, list(unseen_classes)
        self.text_logit_scale = float(text_logit_scale)
        self.use_cache, self.cache_dir = bool(cache), cache_dir
        self.teacher_cache: FeatureCache | None = None
        self.class_names: list[str] = []
        self.register_buffer("text", torch.zeros(0), persistent=False)
        self.register_buffer("train_lut", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("seen_lut", torch.zeros(0, dtype=torch.long), persistent=False)
        self.seen_ids: list[int] = []

    # ----------------------------------------------------------------- config checks
    @classmethod
    def vit_depth(cls, model_cfg):
        return clip_depth(model_cfg["teacher"]["clip_name"])

    @classmethod
    def check_config(cls, model_cfg, cfg) -> None:
        super().check_config(model_cfg, cfg)
        if model_cfg.get("unseen_classes") and model_cfg.get("classifier", "head") != "text":
            raise ConfigError("a zero-shot split (model.unseen_classes) needs model.classifier=text: the seg head "
                              "cannot score classes it never saw; the text classifier can.")

    # ----------------------------------------------------------------- building from the data's classes
    def _build(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        k = len(self.class_names)
        if self.student is None:
            self.student = self.student_fn(num_classes=k, embed_dim=self.teacher.embed_dim)
        unknown = [n for n in self.unseen_names if n not in self.class_names]
        if unknown:
            raise ConfigError(f"model.unseen_classes {unknown} are not classes of this dataset ({', '.join(self.class_names)}).")
        unseen = [self.class_names.index(n) for n in self.unseen_names]
        self.seen_ids = [c for c in range(k) if c not in unseen]
        # labels seen during training: unseen classes become ignore (inductive zero-shot)
        lut = torch.arange(256)
        lut[unseen] = 255
        seen_lut = torch.full((256,), 255, dtype=torch.long)
        seen_lut[self.seen_ids] = torch.arange(len(self.seen_ids))
        self.train_lut, self.seen_lut = lut.to(self.device), seen_lut.to(self.device)
        self.setup_eval(k, {"seen": self.seen_ids, "unseen": unseen} if unseen else None)

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        names = dm.class_names
        if names:
            self._build(names)
        elif stage != "predict":
            raise ConfigError("the DistillModule needs class names from the data config (class_file or a dataset "
                              "that has them).")
        if self.classifier == "text" and self.class_names and self.text.numel() == 0:
            self.text = self.encode_classes(dm.query_names if names else [[n] for n in self.class_names]).to(self.device)
        if stage == "fit":
            self._open_cache(dm)

    def encode_classes(self, query_names: Sequence[Sequence[str]]) -> torch.Tensor:
        """Class-text embeddings [K,E]: every synonym's template ensemble, averaged per class, L2-normalised."""
        names = [n for syn in query_names for n in syn]
        idx = torch.tensor([c for c, syn in enumerate(query_names) for _ in syn])
        feats = self.teacher.encode_text(names)
        return F.normalize(feats.new_zeros(len(query_names), feats.shape[-1]).index_add_(0, idx, feats), dim=-1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["segexp"]["class_names"] = self.class_names
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("teacher.")}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.student is None:  # predict on an unlabelled folder: the classes come from the checkpoint
            self._build(checkpoint.get("segexp", {}).get("class_names") or [])
            if self.classifier == "text":
                self.text = self.encode_classes([[n] for n in self.class_names])
        checkpoint["state_dict"].update({f"teacher.{k}": v for k, v in self.teacher.state_dict().items()})

    # ----------------------------------------------------------------- teacher targets (+ cache)
    def _open_cache(self, dm) -> None:
        if self.teacher_cache is not None or not (self.use_cache and self.loss.needs_teacher):
            return
        if not dm.deterministic_transforms:
            log.warning("teacher cache OFF: the training view rescales/crops at random, so cached teacher features "
                        "would not match the student's input. Set data.train_view.scale_range=null to cache (flips are "
                        "fine: both versions are cached), or model.cache=false to silence this.")
            return
        ds = dm.dataset("train")
        fp = tensor_fingerprint(self.teacher, extra=f"{self.teacher.describe}|{getattr(ds, 'fingerprint', lambda: '')()}"
                                                    f"|dense={self.loss.needs_dense}|local={self.loss.local}")
        path = Path(self.cache_dir) / f"distill_teacher-{fp}.safetensors" if self.cache_dir else None
        self.teacher_cache = FeatureCache(path, fp, dtype=torch.float16)

    def on_fit_start(self) -> None:
        if self.teacher_cache is not None:
            self.build_teacher_cache()

    @torch.no_grad()
    def build_teacher_cache(self) -> None:
        """Run the teacher once over every training sample (and flip), with a progress bar; reused afterwards."""
        from segexp.data import collate
        from segexp.progress import track

        dm, bs = self.trainer.datamodule, self.trainer.datamodule.eval_batch_size
        ds = dm.dataset("train")
        n = len(ds) * (2 if getattr(ds, "hflip", False) else 1)
        batch, before = [], len(self.teacher_cache)
        for item in track(dm.cache_items(), "teacher cache", total=n, unit="samples"):
            batch.append(item)
            if len(batch) == bs:
                self.teacher_targets(collate(batch), store=True)
                batch = []
        if batch:
            self.teacher_targets(collate(batch), store=True)
        if len(self.teacher_cache) > before:
            self.teacher_cache.flush()
            log.info("teacher cache: %d entries (%s)", len(self.teacher_cache), self.teacher_cache.path)

    def _cached_or_live(self, keys: list[str], compute: Callable[[], torch.Tensor], store: bool) -> torch.Tensor:
        cache = self.teacher_cache
        if cache is not None:
            hit = cache.get(keys)
            if hit is not None:
                return hit.to(self.device, torch.float32)
        value = compute()
        if cache is not None and store:
            cache.put(keys, value)
        return value

    @torch.no_grad()
    def teacher_targets(self, batch, store: bool = False) -> dict[str, torch.Tensor | None]:
        """{"cls" [B,E], "dense" [B,E,gh,gw] or None, "local" [P,E] or None, "pairs" [P,2]} for a batch."""
        keys = [m["key"] for m in batch["meta"]]
        images = batch["image"].to(self.device)
        mask = self.train_lut[batch["mask"].to(self.device)]
        live: dict[str, torch.Tensor] = {}

        def run_teacher():
            if not live:
                live["cls"], live["dense"] = self.teacher.encode_image_dense(images, dense=self.loss.needs_dense)
            return live

        out = {"cls": self._cached_or_live([f"{k}|cls" for k in keys], lambda: run_teacher()["cls"], store),
               "dense": None, "local": None, "pairs": present_pairs(mask, len(self.class_names))}
        if self.loss.needs_dense:
            out["dense"] = self._cached_or_live([f"{k}|dense" for k in keys], lambda: run_teacher()["dense"], store)
        if self.loss.w_local > 0 and self.loss.local == "masked_image":
            p = out["pairs"]
            out["local"] = self._cached_or_live(
                [f"{keys[b]}|cls{c}" for b, c in p.tolist()],
                lambda: self.teacher.encode_masked(images[p[:, 0]], mask[p[:, 0]] == p[:, 1, None, None]), store)
        return out

    # ----------------------------------------------------------------- steps
    def _logits(self, out: dict, size, classes: Sequence[int] | None = None) -> torch.Tensor:
        if self.classifier == "head":
            return out["logits"] if tuple(out["logits"].shape[-2:]) == tuple(size) else \
                F.interpolate(out["logits"], size=size, mode="bilinear", align_corners=False)
        text = self.text if classes is None else self.text[list(classes)]
        return SegStudent.text_logits(out["proj"], text, self.text_logit_scale, size)

    def training_step(self, batch, batch_idx):
        mask = self.train_lut[batch["mask"]]
        out = self.student(batch["image"])
        t = self.teacher_targets(batch) if self.loss.needs_teacher else {"cls": None, "dense": None, "local": None, "pairs": None}
        logits, ce_target = None, None
        if self.classifier == "text":
            logits, ce_target = self._logits(out, mask.shape[-2:], self.seen_ids), self.seen_lut[mask]
        losses = self.loss(out, mask, [m["key"] for m in batch["meta"]], t["cls"], t["dense"], t["local"], t["pairs"],
                           len(self.class_names), project=self.student.clip_proj, logits=logits, ce_target=ce_target)
        bs = len(batch["meta"])
        self.log_dict_prefixed("train", losses, on_step=True, on_epoch=True, batch_size=bs)
        self.log("train/loss", losses["loss_total"], prog_bar=True, batch_size=bs)
        return losses["loss_total"]

    @torch.no_grad()
    def predictions(self, batch) -> list[torch.Tensor]:
        """Per image: the prediction [h,w] at its original shape (logits resized before the argmax)."""
        images, preds = batch["image"], []
        groups = [images] if torch.is_tensor(images) else [im[None] for im in images]
        metas = iter(batch["meta"])
        for group in groups:
            out = self.student(group.to(self.device))
            logits = self._logits(out, group.shape[-2:])
            for lg in logits:
                ori = tuple(next(metas).get("ori_shape") or lg.shape[-2:])
                if tuple(lg.shape[-2:]) != ori:
                    lg = F.interpolate(lg[None], size=ori, mode="bilinear", align_corners=False)[0]
                preds.append(lg.argmax(0))
        return preds

    def on_train_epoch_end(self) -> None:
        if self.teacher_cache is not None:
            self.teacher_cache.flush()

    def configure_optimizers(self):
        return self.build_optimizer(self.optim, self.student.param_groups())
