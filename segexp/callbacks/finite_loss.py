"""Stop a run at the first non-finite training loss, before it reaches a checkpoint."""
from __future__ import annotations

import math

import torch
from lightning.pytorch.callbacks import Callback

from segexp.errors import NonFiniteLossError


class FiniteLossGuard(Callback):
    """Raises `NonFiniteLossError` (reported by the entry point in one paragraph) on a NaN / inf loss.

    Checkpoints are written after validation or at epoch end, so the weights that produced the bad loss never
    replace `last.ckpt`: the message names it, and `resume=true` continues from it (e.g. with a lower lr)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach()) if torch.is_tensor(loss) else float(loss)
        if math.isfinite(value):
            return
        ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "") if trainer.checkpoint_callback else ""
        raise NonFiniteLossError(
            f"the training loss is {value} at step {trainer.global_step} (epoch {trainer.current_epoch}, batch "
            f"{batch_idx}); the run stopped. Last good checkpoint: {ckpt or 'none written yet'}. Lower the learning "
            f"rate or enable gradient clipping, then resume with resume=true (same run dir).")
