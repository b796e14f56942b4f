"""segexp: CLIP-based segmentation and retrieval experiments.

Importing the package loads nothing heavy. `segexp.config` (imported by the entry point and by
`segexp.config.compose_config`) registers the config schemas with Hydra's ConfigStore, so every compose (CLI,
tests, notebooks) validates the attention settings the same way.
"""

__version__ = "0.1.0"
