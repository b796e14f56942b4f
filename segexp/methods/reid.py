"""ReIDModule: text-to-image person ReID (T2IReIDModel + ReIDLoss), evaluated with the standard protocol.

Evaluation: every caption of the split is a query encoded by the text encoder alone; every image is a gallery
item encoded by the image encoder alone; relevance = same person id. Reported: R@1/5/10, mAP, mINP (×100)
as `<stage>/R1`...; composed retrieval (fusion of identity and clothing texts) as `<stage>/composed_R1`..., never
in place of the text→image numbers.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import torch

from segexp.errors import ConfigError
from segexp.losses.reid import ReIDLoss
from segexp.methods.base import SegexpModule
from segexp.metrics.retrieval import RetrievalMetric
from segexp.models.t2i_reid import T2IReIDModel, dann_lambda

log = logging.getLogger(__name__)

METRICS = ("R1", "R5", "R10", "mAP", "mINP")


class ReIDModule(SegexpModule):
    def __init__(
        self,
        net: Callable[..., T2IReIDModel],
        loss: ReIDLoss,
        optim: Mapping[str, Any],
        id_projection: str = "unified",
        grl_schedule: str = "dann",
        grl_gamma: float = 10.0,
        grl_lambda: float = 1.0,
        tokenizer_dir: str | None = None,
        eval_chunk: int = 1024,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "loss", "optim"])
        if grl_schedule not in ("dann", "constant"):
            raise ValueError(f"model.grl_schedule must be dann or constant, got {grl_schedule!r}")
        # `id_projection` is the sweepable name of the net's variant (the net config interpolates it)
        self.id_projection = id_projection
        self.net_fn, self.net = net, None
        self.loss, self.optim = loss, optim
        self.grl_schedule, self.grl_gamma, self.grl_lambda = grl_schedule, float(grl_gamma), float(grl_lambda)
        self.tokenizer_dir = tokenizer_dir
        self.retrieval = torch.nn.ModuleDict({k: RetrievalMetric(chunk=eval_chunk) for k in ("t2i", "composed")})

    # ----------------------------------------------------------------- building from the data
    def setup(self, stage: str) -> None:
        if self.net is not None:
            return
        dm = self.trainer.datamodule
        if "train" not in dm.splits:
            raise ConfigError("the ReIDModule takes its identity count and vocabulary from the data's train split, "
                              "which this data config does not have.")
        train = dm.dataset("train")
        self.net = self.net_fn(num_classes=train.num_classes)
        text = self.net.text_encoder
        if getattr(text, "needs_vocabulary", False):  # a checkpoint's own vocabulary replaces it in on_load_checkpoint
            text.prepare(train.all_texts(), self.tokenizer_dir)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        wp = getattr(self.net.text_encoder, "wordpiece", None)
        if wp is not None:  # the vocabulary travels with the weights
            checkpoint["segexp"]["tokenizer"] = wp.to_str()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        tok = checkpoint.get("segexp", {}).get("tokenizer")
        if tok is not None and self.net is not None and getattr(self.net.text_encoder, "needs_vocabulary", False):
            from tokenizers import Tokenizer

            self.net.text_encoder.set_wordpiece(Tokenizer.from_str(tok))

    # ----------------------------------------------------------------- training
    def on_train_batch_start(self, batch, batch_idx) -> None:
        if self.grl_schedule == "dann":
            p = self.global_step / max(int(self.trainer.estimated_stepping_batches), 1)
            self.net.grl.lam = self.grl_lambda * dann_lambda(p, self.grl_gamma)
        else:
            self.net.grl.lam = self.grl_lambda

    def training_step(self, batch, batch_idx):
        out = self.net(batch["image"], batch["caption"], batch["id_text"], batch["cloth_text"])
        losses = self.loss(out, batch["label"], batch["cloth_label"])
        bs = len(batch["caption"])
        self.log_dict_prefixed("train", losses, on_step=True, on_epoch=True, batch_size=bs)
        self.log("train/grl_lambda", self.net.grl.lam, on_step=True, on_epoch=False, batch_size=bs)
        self.log("train/logit_scale", self.loss.scale().detach(), on_step=True, on_epoch=False, batch_size=bs)
        return losses["loss_total"]

    # ----------------------------------------------------------------- evaluation (text-only queries, image-only gallery)
    @staticmethod
    def _queries(batch) -> tuple[list[str], list[str], list[str], torch.Tensor]:
        """Every caption of the batch with its identity / clothing texts and person id (no image involved)."""
        caps = batch.get("captions") or [[c] for c in batch["caption"]]
        ids = batch.get("id_texts") or [[t] for t in batch["id_text"]]
        cls = batch.get("cloth_texts") or [[t] for t in batch["cloth_text"]]
        pids = torch.as_tensor(batch["pid"])
        flat = [(c, i, t, int(p)) for cs, is_, ts, p in zip(caps, ids, cls, pids) for c, i, t in zip(cs, is_, ts)]
        return [f[0] for f in flat], [f[1] for f in flat], [f[2] for f in flat], torch.tensor([f[3] for f in flat])

    @torch.no_grad()
    def query_embeddings(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(text queries [Q,E], composed queries [Q,E], person ids [Q]) from the batch's texts alone."""
        captions, id_texts, cloth_texts, pids = self._queries(batch)
        return self.net.encode_text(captions), self.net.compose(id_texts, cloth_texts), pids

    @torch.no_grad()
    def gallery_embeddings(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.encode_image(batch["image"])["image_embeds"], torch.as_tensor(batch["pid"])

    def _eval_step(self, batch) -> None:
        text_q, composed_q, qids = self.query_embeddings(batch)
        gallery, gids = self.gallery_embeddings(batch)
        dev = gallery.device
        self.retrieval["t2i"].update(text_q, qids.to(dev), gallery, gids.to(dev))
        self.retrieval["composed"].update(composed_q, qids.to(dev), gallery, gids.to(dev))

    def _eval_end(self, stage: str) -> None:
        for name, metric in self.retrieval.items():
            res = metric.compute()
            metric.reset()
            prefix = f"{stage}/" if name == "t2i" else f"{stage}/composed_"
            self.log_dict({f"{prefix}{k}": res[k] for k in METRICS}, prog_bar=name == "t2i", sync_dist=False)
            if name == "t2i":
                log.info("%s text→image: %s", stage, "  ".join(f"{k} {res[k]:.2f}" for k in METRICS))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch)

    def on_validation_epoch_end(self):
        self._eval_end("val")

    def on_test_epoch_end(self):
        self._eval_end("test")

    # ----------------------------------------------------------------- optimiser: every trainable parameter, loss included
    def configure_optimizers(self):
        groups = dict(self.net.param_groups())
        groups["loss"] = list(self.loss.parameters())
        return self.build_optimizer(self.optim, groups)
