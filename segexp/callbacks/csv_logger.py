"""Lightning's CSVLogger, made safe to append to a `metrics.csv` that another process started.

Lightning's writer deletes a `metrics.csv` it finds in its directory, and remembers the CSV header in memory.
When a second process appends to the same run's file with other columns (a resumed run after a kill, or `trainer.test` after `trainer.fit` under
`ddp_spawn`, whose ranks each start from the parent's empty writer) it rewrites the file with only its own
columns and fails ("dict contains fields not in fieldnames"). This writer first adopts the file's header, and
rewrites the file (when columns are added) atomically.
Rows are flushed at every log call (Lightning: every 100 steps), so a killed run keeps its history up to the
kill; after a resume the interrupted epoch's rows appear twice, as the attempt and the replay.
"""
from __future__ import annotations

import csv

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from segexp.atomic import atomic_path


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep an existing metrics.csv (Lightning deletes it): the run dir's history is appended to."""

    def _record_new_keys(self) -> set[str]:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(set(self.metrics_keys) | set(header))
        return super()._record_new_keys()

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        """Lightning truncates the file and writes it again in place: a kill in between loses the history."""
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            rows = list(csv.DictReader(f))
        with atomic_path(self.metrics_file_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)


class CSVLogger(_LightningCSVLogger):
    def __init__(self, *args, flush_logs_every_n_steps: int = 1, **kwargs):
        super().__init__(*args, flush_logs_every_n_steps=flush_logs_every_n_steps, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> _AppendingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
