"""Shared callbacks (Lightning's own for checkpointing, early stopping, LR and progress are used directly)."""
from segexp.callbacks.checkpoint_io import AtomicCheckpointIO
from segexp.callbacks.csv_logger import CSVLogger
from segexp.callbacks.epoch_seed import EpochSeed
from segexp.callbacks.eval_speed import EvalSpeed
from segexp.callbacks.finite_loss import FiniteLossGuard
from segexp.callbacks.metrics_plot import MetricsPlot
from segexp.callbacks.model_checkpoint import FreshLastCheckpoint
from segexp.callbacks.progress import LineProgressBar, progress_bar
from segexp.callbacks.prediction_writer import SegPredictionWriter, save_palette_png
from segexp.callbacks.visualiser import SegVisualiser, overlay, palette

__all__ = ["AtomicCheckpointIO", "CSVLogger", "EpochSeed", "EvalSpeed", "FiniteLossGuard", "FreshLastCheckpoint", "LineProgressBar", "MetricsPlot", "SegPredictionWriter", "SegVisualiser", "overlay", "palette", "progress_bar", "save_palette_png"]
