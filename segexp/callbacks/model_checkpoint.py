"""Lightning's ModelCheckpoint with a `last.ckpt` that is never stale.

Lightning 2.6 writes `last.ckpt` only at a step where a top-k checkpoint is written too ("Only save last
checkpoint if a checkpoint was actually saved in this step"), and at the end of fit only if no `last.ckpt` was
ever written. With `save_top_k=1`, a run whose monitored metric stops improving after epoch 0 keeps epoch 0 in
`last.ckpt`: `resume=true` then repeats finished epochs, and anyone loading it gets old weights. Here `last.ckpt`
also follows every validation and the end of fit (e.g. a `max_steps` stop mid-epoch), whatever the metric does;
like every other checkpoint it is not written in a `fast_dev_run` (Lightning's on_train_end writes one there).
"""
from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class FreshLastCheckpoint(ModelCheckpoint):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last_written_at: int | None = None  # global step of the newest last.ckpt

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_written_at = trainer.global_step

    def _refresh_last(self, trainer) -> None:
        skip = trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != "fit"
        if self.save_last and not skip and self._last_written_at != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        # replaces Lightning's, which writes last.ckpt even in a fast_dev_run when none was written before
        self._refresh_last(trainer)
