"""segexp: CLIP-based segmentation and retrieval experiments.

Importing the package registers the config schemas with Hydra's ConfigStore, so any compose
(CLI, tests, notebooks) validates attention / loss settings the same way.
"""

__version__ = "0.1.0"
