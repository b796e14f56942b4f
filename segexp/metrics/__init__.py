"""Metrics: thin wrappers over torchmetrics where needed."""
from segexp.metrics.segmentation import per_class_iou_metric, summarise, write_table

__all__ = ["per_class_iou_metric", "summarise", "write_table"]
