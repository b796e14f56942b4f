"""The console in one place: every line once, and known third-party noise filtered.

* Lightning attaches its own stream handler to its loggers when imported; under Hydra the root handler prints the
  same records again (`INFO: GPU available...` and `[...][lightning...][INFO] - GPU available...`). Lightning's
  handlers are removed, so its records reach the console once, through the run's handler (and run.log).
* open_clip logs each step of `create_model` to the root logger at INFO, and warns "Model initialized randomly"
  before segexp loads the weights into that model: segexp says which weights it loaded, or warns loudly itself
  when a model stays random, so those records are dropped.
* Known harmless warnings are ignored: Lightning's litlogger tip, its `LeafSpec` deprecation (from torch's pytree)
  and its eval-mode module count (frozen teachers are in eval mode on purpose).
"""
from __future__ import annotations

import logging
import warnings

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")

#: (message regex, category) of the warnings `quiet()` ignores
IGNORED_WARNINGS = (
    (r".*isinstance\(treespec, LeafSpec\).*", None),
    (r"Found \d+ module\(s\) in eval mode at the start of training.*", None),
)


def _not_noise(record: logging.LogRecord) -> bool:
    if "litlogger" in record.getMessage():
        return False
    from_open_clip = "open_clip" in record.pathname.replace("\\", "/").split("site-packages/")[-1].split("/")[0]
    if not (from_open_clip and record.name == "root"):
        return True
    # its other warnings (e.g. a QuickGELU mismatch) stay
    return record.levelno > logging.INFO and "initialized randomly" not in record.getMessage()


def quiet() -> None:
    """Idempotent: safe to call in every job of a multirun. Imports Lightning (which adds its handlers at import)."""
    import lightning  # noqa: F401

    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        logger.propagate = True
    for logger in (logging.getLogger(), logging.getLogger("lightning.pytorch.utilities.rank_zero")):
        if _not_noise not in logger.filters:
            logger.addFilter(_not_noise)
    for message, category in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category or Warning)
