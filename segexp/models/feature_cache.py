"""An on-disk cache of frozen-teacher outputs, keyed by sample key, versioned and content-checked.

Values live in memory while a run fills them and are written atomically (temp file + rename) as one
safetensors file whose metadata carries the format version and the teacher/transform fingerprint. A
file with another fingerprint, or a truncated one, is ignored and rebuilt, never silently used.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from segexp.atomic import atomic_path

log = logging.getLogger(__name__)

CACHE_VERSION = "1"


def tensor_fingerprint(module: torch.nn.Module, extra: str = "") -> str:
    """sha1 over every parameter and buffer (names, shapes, bytes): the teacher's identity."""
    h = hashlib.sha1(extra.encode())
    for name, t in list(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


class FeatureCache:
    def __init__(self, path: str | Path | None, fingerprint: str, dtype: torch.dtype = torch.float32):
        self.path = Path(path) if path else None
        self.fingerprint = fingerprint
        self.dtype = dtype
        self.store: dict[str, torch.Tensor] = {}
        self.dirty = False
        self.hits = self.misses = 0
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("version") != CACHE_VERSION or meta.get("fingerprint") != self.fingerprint:
                    log.warning("feature cache %s is stale (version/fingerprint differ): rebuilding", self.path)
                    return
                self.store = {k: f.get_tensor(k) for k in f.keys()}
            log.info("feature cache: %d entries from %s", len(self.store), self.path)
        except Exception as e:  # truncated or corrupt file
            log.warning("feature cache %s is unreadable (%s): rebuilding", self.path, type(e).__name__)
            self.store = {}

    def __len__(self) -> int:
        return len(self.store)

    def get(self, keys: list[str]) -> torch.Tensor | None:
        """Stacked values when every key is cached, else None."""
        if all(k in self.store for k in keys):
            self.hits += len(keys)
            return torch.stack([self.store[k] for k in keys])
        self.misses += len(keys)
        return None

    def put(self, keys: list[str], values: torch.Tensor) -> None:
        for k, v in zip(keys, values.detach().to("cpu", self.dtype)):
            self.store[k] = v.clone()
        self.dirty = True

    def flush(self) -> None:
        if self.path is None or not self.dirty:
            return
        from safetensors.torch import save_file

        with atomic_path(self.path) as tmp:
            save_file({k: v.contiguous() for k, v in self.store.items()}, str(tmp),
                      metadata={"version": CACHE_VERSION, "fingerprint": self.fingerprint})
        self.dirty = False
