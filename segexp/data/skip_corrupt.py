"""`data.skip_corrupt=true`: unreadable samples are skipped with a counted warning instead of stopping the run.

Without it a corrupt file stops the run with a DataError naming the file and the sample index. With it:
- evaluation splits are checked once when built and the unreadable samples dropped (one warning with the
  count and the paths), so every remaining sample is evaluated exactly once;
- the training split is not pre-read (it can be large): a sample that fails to load is replaced by the
  next readable one, keeping batches full, and each skip is logged with the running count.
"""
from __future__ import annotations

import logging

from torch.utils.data import Dataset

from segexp.data.datasets import DataError

log = logging.getLogger(__name__)


class SkipCorrupt(Dataset):
    def __init__(self, base: Dataset, split: str, prescan: bool):
        self.base, self.split, self.skipped = base, split, 0
        self.indices = list(range(len(base)))
        if prescan:
            bad = []
            for i in self.indices:
                try:
                    base[i]
                except DataError as e:
                    bad.append((i, str(e)))
            self.skipped = len(bad)
            if bad:
                dropped = {i for i, _ in bad}
                self.indices = [i for i in self.indices if i not in dropped]
                log.warning("data.skip_corrupt: %d of %d '%s' samples are unreadable and skipped:\n  %s", len(bad),
                            len(base), split, "\n  ".join(msg for _, msg in bad[:20]) + ("\n  ..." if len(bad) > 20 else ""))
            if not self.indices:
                raise DataError(f"data.skip_corrupt: every '{split}' sample is unreadable")

    def __getattr__(self, name):  # class_names, name, fingerprint, cacheable ... of the wrapped dataset
        if name in ("base", "split", "skipped", "indices"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __len__(self) -> int:
        return len(self.indices)

    def _skip(self, error: DataError) -> None:
        self.skipped += 1
        log.warning("data.skip_corrupt: skipped an unreadable '%s' sample (%d so far in this process): %s",
                    self.split, self.skipped, error)

    def __getitem__(self, index: int):
        n = len(self.indices)
        for step in range(n):
            try:
                return self.base[self.indices[(index + step) % n]]
            except DataError as e:
                self._skip(e)
        raise DataError(f"data.skip_corrupt: every '{self.split}' sample is unreadable")

    def variants(self, index: int) -> list:
        """Cacheable versions of a sample (see SegTrainView.variants); none for an unreadable one."""
        try:
            i = self.indices[index]
            return self.base.variants(i) if hasattr(self.base, "variants") else [self.base[i]]
        except DataError as e:
            self._skip(e)
            return []
