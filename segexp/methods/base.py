"""What every segexp LightningModule shares: hparams hygiene, attention install, optimiser groups, config checks."""
from __future__ import annotations

from typing import Any, Mapping

import lightning as L
import torch

from segexp.attention import AttentionSpec, install, spec_from_config
from segexp.constraints import NonNegative
from segexp.errors import ConfigError


class SegexpModule(L.LightningModule):
    """Base class. Subclasses call `super().__init__()`; where the module itself owns the ViT the `attention` group
    acts on, it calls `self.setup_attention(vit, attention)` (models that own their ViT, such as NACLIPSegmenter or
    CLIPTeacher, install the group themselves and the module copies their `attention_report`)."""

    #: training-free methods skip `fit`: their default stage is `test`
    training_free: bool = False
    #: a method whose pretrained model predicts as it is (fine-tuning optional) may predict without a checkpoint
    predicts_untrained: bool = False
    #: takes the dense-feature methods of the `attention` group (attention=resclip|scclip) besides per-block strategies
    dense_methods: bool = False

    def __init__(self):
        super().__init__()
        self.attention_report: list[str] = []
        #: the resolved run config (plain types), stored in every checkpoint by `on_save_checkpoint`
        self.run_config: dict | None = None
        #: torchmetrics means behind `log_epoch_means`, created on first use
        self.epoch_means = torch.nn.ModuleDict()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["segexp"] = {"method": f"{type(self).__module__}.{type(self).__qualname__}", "config": self.run_config}

    # ----------------------------------------------------------------- config checks (before building)
    @classmethod
    def vit_depth(cls, model_cfg: Mapping[str, Any]) -> int | None:
        """Depth of the ViT the `attention` group applies to, from config alone (None: no ViT)."""
        return None

    @classmethod
    def check_config(cls, model_cfg: Mapping[str, Any], cfg: Mapping[str, Any]) -> None:
        """Raise ConfigError for a bad combination, before any data or model is built."""
        if cls.training_free and cfg.get("stage") == "fit":
            raise ConfigError(f"{cls.__name__} is training-free: use stage=validate, test or predict (not fit).")
        untrained_ok = cls.training_free or cls.predicts_untrained
        if not untrained_ok and cfg.get("stage") == "predict" and not (cfg.get("ckpt_path") or cfg.get("resume")):
            raise ConfigError(f"{cls.__name__} needs training before it can predict: pass the trained checkpoint "
                              f"(ckpt_path=RUN_DIR/checkpoints/best-epochNN.ckpt; the model is rebuilt from it), or "
                              f"train first (stage=fit).")
        for key, value in (model_cfg.get("optim") or {}).items():  # `<group>_lr`, `<group>_weight_decay`
            if str(key).endswith(("_lr", "_weight_decay")):
                why = "a number" if isinstance(value, bool) or not isinstance(value, (int, float)) else NonNegative.violation(value)
                if why:
                    raise ConfigError(f"model.optim.{key}={value!r} must be {why} (a learning rate or weight decay of "
                                      f"{cls.__name__}'s `{str(key).rsplit('_', 2)[0]}` parameter group).")
        att = cfg.get("attention")
        depth = cls.vit_depth(model_cfg)
        if att is not None and depth is not None:
            spec = spec_from_config(att)
            if not isinstance(spec, AttentionSpec) and not cls.dense_methods:
                raise ConfigError(f"attention={type(spec).__name__.removesuffix('Spec').lower()} is a dense-feature "
                                  f"method (it reads middle blocks and re-runs the last one) for training-free "
                                  f"segmentation: use it with model=naclip. {cls.__name__} takes a per-block "
                                  f"strategy (attention=neighbour|csa|qq|value|kk|gaussian|vanilla).")
            try:
                spec.resolve_layers(depth)
            except ValueError as e:
                raise ConfigError(f"{e} for model '{cls.__name__}'.") from None

    # ----------------------------------------------------------------- helpers
    def setup_attention(self, vit: torch.nn.Module, attention: AttentionSpec | None) -> None:
        """Install the `attention` group on `vit` (any supported ViT family) and keep its report for the logs."""
        if attention is not None:
            self.attention_report = install(vit, attention)

    def log_dict_prefixed(self, prefix: str, values: Mapping[str, torch.Tensor], **kw) -> None:
        batch_size = kw.pop("batch_size", None)
        self.log_dict({f"{prefix}/{k}": v.detach() if torch.is_tensor(v) else v for k, v in values.items()},
                      batch_size=batch_size, **kw)

    def log_epoch_means(self, prefix: str, values: Mapping[str, torch.Tensor], batch_size: int) -> None:
        """Log `prefix/<key>` epoch means weighted by sample count, exact across DDP ranks.

        With uneven shards Lightning's own `sync_dist` mean is not: it all-reduces the integer sample count
        with a mean and truncates it (15 samples on 2 ranks count as 14). torchmetrics' MeanMetric syncs sums.
        """
        from torchmetrics.aggregation import MeanMetric

        for key, value in values.items():
            attr = f"{prefix}__{key}"
            if attr not in self.epoch_means:
                self.epoch_means[attr] = MeanMetric().to(value.device)
            metric = self.epoch_means[attr]
            metric.update(value.detach().float(), weight=batch_size)
            self.log(f"{prefix}/{key}", metric, on_step=False, on_epoch=True, batch_size=batch_size,
                     metric_attribute=f"epoch_means.{attr}")

    def build_optimizer(self, optim: Mapping[str, Any], groups: Mapping[str, list]) -> Any:
        """`optim.optimizer` is a partial optimiser; `optim.<group>_lr` (and optionally `<group>_weight_decay`)
        set each parameter group; `optim.scheduler` is a partial scheduler called with `T_max` = total steps."""
        params = []
        for name, ps in groups.items():
            ps = [p for p in ps if p.requires_grad]
            if ps:
                group = {"params": ps, "lr": float(optim[f"{name}_lr"]), "name": name}
                if f"{name}_weight_decay" in optim:
                    group["weight_decay"] = float(optim[f"{name}_weight_decay"])
                params.append(group)
        opt = optim["optimizer"](params)
        sched_fn = optim.get("scheduler")
        if sched_fn is None:
            return opt
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched_fn(opt, T_max=total), "interval": "step"}}
