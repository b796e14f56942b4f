"""A Lightning callback that times training steps and epochs (shared by the benchmarks)."""
from __future__ import annotations

import time

import lightning as L


class Timer(L.Callback):
    def __init__(self):
        self.epoch_times, self.step_times = [], []

    def on_train_epoch_start(self, trainer, module):
        self.t_epoch = time.perf_counter()
        self.steps = []

    def on_train_batch_start(self, *a):
        self.t_step = time.perf_counter()

    def on_train_batch_end(self, *a):
        self.steps.append(time.perf_counter() - self.t_step)

    def on_train_epoch_end(self, trainer, module):
        self.epoch_times.append(time.perf_counter() - self.t_epoch)
        self.step_times.append(sum(self.steps) / len(self.steps))
