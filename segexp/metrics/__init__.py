"""Metrics: thin wrappers over torchmetrics where needed. Every score is in percent."""
from segexp.metrics.retrieval import RetrievalMetric, rank_metrics, rank_metrics_from_features, recall_at_1
from segexp.metrics.segmentation import SegScores, confusion_metric, scores, write_table

__all__ = ["RetrievalMetric", "rank_metrics", "rank_metrics_from_features", "recall_at_1", "SegScores",
           "confusion_metric", "scores", "write_table"]
