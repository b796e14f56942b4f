"""Plot every logged epoch metric at the end of fit: `<run dir>/metrics.png`."""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class MetricsPlot(Callback):
    def __init__(self, filename: str = "metrics.png"):
        self.filename = filename
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def _record(self, trainer):
        if trainer.sanity_checking:
            return
        for k, v in trainer.callback_metrics.items():
            if k.endswith("_step") or v.numel() != 1:
                continue
            pts = self.history[k.replace("_epoch", "")]
            if not pts or pts[-1][0] != trainer.current_epoch:
                pts.append((trainer.current_epoch, float(v)))
            else:
                pts[-1] = (trainer.current_epoch, float(v))

    def on_train_epoch_end(self, trainer, pl_module):
        self._record(trainer)

    def on_validation_epoch_end(self, trainer, pl_module):
        self._record(trainer)

    def on_fit_end(self, trainer, pl_module):
        if not trainer.is_global_zero or not self.history:
            return
        self.plot(Path(trainer.default_root_dir) / self.filename)

    def plot(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        families: dict[str, list[str]] = defaultdict(list)
        for key in sorted(self.history):
            families[key.split("/", 1)[-1]].append(key)
        n = len(families)
        cols = min(3, n)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
        for ax, (name, keys) in zip(axes.flat, families.items()):
            for key in keys:
                xs, ys = zip(*self.history[key])
                ax.plot(xs, ys, marker="o", label=key.split("/")[0])
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path
