"""Metrics: thin wrappers over torchmetrics where needed, and retrieval ranks."""
