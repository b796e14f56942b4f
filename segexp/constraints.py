"""Value ranges for constructor parameters, read by segexp's config validation from `typing.Annotated` hints.

`batch_size: Annotated[int, Positive] = 8` documents the range where it is declared and lets
`segexp.config.validate` refuse `data.batch_size=0` before anything is built. Plain Python: no Hydra here, so
models, losses and data can annotate their signatures without importing the config machinery.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """A finite number within the given bounds (each optional)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def violation(self, value) -> str | None:
        """None if `value` is in range, else what it must be."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # the type check reports non-numbers
        if not math.isfinite(value):
            return f"a finite number ({self})"
        ok = (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt) and (self.le is None or value <= self.le)
        return None if ok else str(self)

    def __str__(self) -> str:
        parts = [f">= {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else "",
                 f"<= {self.le:g}" if self.le is not None else ""]
        return " and ".join(p for p in parts if p) or "finite"


Positive = Range(gt=0)
NonNegative = Range(ge=0)
Fraction = Range(ge=0, le=1)
