"""Progress for long steps outside Lightning's loops (text features, caches, weight loading).

On a terminal: a transient `rich.progress` bar. Anywhere else (a log file, CI, a notebook's captured
stderr, `| tee`): a log line at every tenth of the work (at least 5 s apart) and at least every 30 s, since a
bar redrawn with carriage returns is invisible there and a run that prints nothing for minutes looks hung.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("segexp")

#: at least one line this often when the output is not a terminal ...
LINE_INTERVAL_S = 30.0
#: ... and a line at a tenth of the work only this long after the previous one (a 5-second step stays quiet)
MIN_GAP_S = 5.0


def on_terminal() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class LineProgress:
    """Counts done items of `total` and logs "<what>: k/n (p%), elapsed, left" at tenths (5 s apart at least)
    and every 30 s."""

    def __init__(self, what: str, total: int | None, unit: str = "", tenths: bool = True):
        self.what, self.total, self.unit, self.tenths = what, total, unit, tenths
        self.start = self.last = time.monotonic()
        self.done, self.next_tenth = 0, 1

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        tenth = self.tenths and self.total and self.done * 10 >= self.next_tenth * self.total
        if (tenth and now - self.last >= MIN_GAP_S) or now - self.last >= LINE_INTERVAL_S:
            if self.total:
                self.next_tenth = self.done * 10 // self.total + 1
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.start
        unit = f" {self.unit}" if self.unit else ""
        if not self.total:
            return f"{self.what}: {self.done}{unit}, {elapsed:.0f} s"
        left = elapsed / max(self.done, 1) * (self.total - self.done)
        return (f"{self.what}: {self.done}/{self.total}{unit} ({100 * self.done // self.total}%), "
                f"{elapsed:.0f} s elapsed, ~{left:.0f} s left")


def track(items: Iterable[T], what: str, total: int | None = None, min_total: int = 16, unit: str = "") -> Iterator[T]:
    """Iterate `items` showing progress; silent when fewer than `min_total` items (or unknown and not a terminal)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if total is not None and total < min_total:
        yield from items
        return
    if on_terminal():
        from rich.progress import track as rich_track

        yield from rich_track(items, total=total, description=what, transient=True)
        return
    progress = LineProgress(what, total, unit)
    for item in items:
        yield item
        progress.advance()


def while_slow(items: Iterable[T], what: str, total: int | None = None, unit: str = "") -> Iterator[T]:
    """Iterate `items`, logging a progress line only once a step has run for 30 s: for loops inside a batch
    (an image's sliding windows), which Lightning's bar shows as one step and which are usually quick."""
    progress = LineProgress(what, total, unit, tenths=False)
    for item in items:
        yield item
        progress.advance()


class timed:
    """`with timed("loading ViT-B-16 weights from ..."):` logs the step when it starts and how long it took."""

    def __init__(self, what: str, min_seconds: float = 1.0):
        self.what, self.min_seconds = what, min_seconds

    def __enter__(self):
        log.info("%s ...", self.what)
        self.start = time.monotonic()
        return self

    def __exit__(self, kind, value, tb):
        took = time.monotonic() - self.start
        if kind is None and took >= self.min_seconds:
            log.info("%s: done in %.1f s", self.what, took)
        return False
