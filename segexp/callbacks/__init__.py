"""Shared callbacks (Lightning's own for checkpointing, early stopping, LR and progress are used directly)."""
from segexp.callbacks.metrics_plot import MetricsPlot
from segexp.callbacks.visualiser import SegVisualiser, overlay, palette

__all__ = ["MetricsPlot", "SegVisualiser", "overlay", "palette"]
