"""Progress of Lightning's loops: its rich bar on a terminal, log lines anywhere else.

Lightning's RichProgressBar draws nothing until the end when stderr is not a terminal (a log file, CI,
`| tee`, a notebook's captured output), so a 16-minute benchmark test printed nothing between setup and
the result. `LineProgressBar` logs each loop's position at every tenth and at least every 30 s, with the
bar's metrics.
"""
from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

from segexp.progress import LineProgress, on_terminal


def progress_bar(**rich_kwargs: Any) -> ProgressBar:
    """The bar for this console: RichProgressBar(**rich_kwargs) on a terminal, else LineProgressBar."""
    return RichProgressBar(**rich_kwargs) if on_terminal() else LineProgressBar()


class LineProgressBar(ProgressBar):
    """A ProgressBar that writes plain log lines (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._line: LineProgress | None = None
        self._train_line: LineProgress | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def _start(self, what: str, total: Any) -> None:
        if self._enabled:
            total = int(total) if total not in (None, float("inf")) else None
            self._line = LineProgress(what, total, unit="batches")

    def _start_on_new_loader(self, dataloader_idx: int, what: str, total: str) -> None:
        """A new line for each dataloader of an evaluation loop; `total` names the bar's count property."""
        if self.has_dataloader_changed(dataloader_idx):
            self._start(what, getattr(self, total))

    def _advance(self, trainer, pl_module) -> None:
        if self._enabled and self._line is not None:
            if trainer.training and not (trainer.validating or trainer.sanity_checking):
                self._line.what = self._train_what(trainer, pl_module)  # the bar's metrics as of this batch
            self._line.advance()

    def _train_what(self, trainer, pl_module) -> str:
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        return f"epoch {trainer.current_epoch} train" + (f" [{shown}]" if shown else "")

    # ---------------------------------------------------------------- Lightning hooks
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start(f"epoch {trainer.current_epoch} train", self.total_train_batches)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._advance(trainer, pl_module)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and dataloader_idx == 0:
            self._train_line = self._line  # validation inside fit: the train line resumes afterwards
        what = self.sanity_check_description if trainer.sanity_checking else self.validation_description
        self._start_on_new_loader(dataloader_idx, what, "total_val_batches_current_dataloader")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._advance(trainer, pl_module)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self.reset_dataloader_idx_tracker()
        if trainer.state.fn == "fit":  # trainer.training is False here: the loop is still validating
            self._line = self._train_line

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._start_on_new_loader(dataloader_idx, self.test_description, "total_test_batches_current_dataloader")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._advance(trainer, pl_module)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self.reset_dataloader_idx_tracker()

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._start_on_new_loader(dataloader_idx, self.predict_description, "total_predict_batches_current_dataloader")

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._advance(trainer, pl_module)

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        self.reset_dataloader_idx_tracker()
