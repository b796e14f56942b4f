"""Metrics: thin wrappers over torchmetrics where needed."""
from segexp.metrics.retrieval import RetrievalMetric, rank_metrics, rank_metrics_from_features
from segexp.metrics.segmentation import per_class_iou_metric, summarise, write_table

__all__ = ["RetrievalMetric", "rank_metrics", "rank_metrics_from_features", "per_class_iou_metric", "summarise", "write_table"]
