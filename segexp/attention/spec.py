"""What the `attention` config group describes, as a plain dataclass.

The same dataclass (plus `_target_`) is the Hydra schema of the group (see `segexp.config`), so a bad
enum value or a wrong type fails while the config is composed, and the range checks below run before
any model is built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import List, Optional


class StrategyName(str, Enum):
    vanilla = "vanilla"
    neighbour = "neighbour"
    gaussian = "gaussian"
    kk = "kk"
    csa = "csa"
    qq = "qq"
    value = "value"


class Arch(str, Enum):
    reduced = "reduced"  # the block returns its attention output: no residual, no FFN
    vanilla = "vanilla"  # residual + FFN kept


class LayerIndex(str, Enum):
    absolute = "absolute"  # indices are block indices of the model
    relative = "relative"  # indices refer to a 12-block reference and are depth-scaled


REFERENCE_DEPTH = 12


@dataclass
class AttentionSpec:
    strategy: StrategyName = StrategyName.vanilla
    layers: Optional[List[int]] = None  # None: the last block; []: no block is modified
    std: float = 5.0
    prior_scale: float = 1.0  # Ω is multiplied by this (0: the prior adds nothing)
    arch: Arch = Arch.vanilla
    layer_index: LayerIndex = LayerIndex.absolute

    def __post_init__(self) -> None:
        self.strategy = StrategyName(_enum_value(self.strategy))
        self.arch = Arch(_enum_value(self.arch))
        self.layer_index = LayerIndex(_enum_value(self.layer_index))
        if not (isinstance(self.std, (int, float)) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"attention.std must be > 0 (the Gaussian width in patches), got {self.std}")
        if not (isinstance(self.prior_scale, (int, float)) and math.isfinite(self.prior_scale) and self.prior_scale >= 0):
            raise ValueError(f"attention.prior_scale must be >= 0, got {self.prior_scale}")
        if self.layers is not None:
            self.layers = [int(i) for i in self.layers]

    def resolve_layers(self, depth: int) -> list[int]:
        """Block indices to modify in a `depth`-block ViT; raises ValueError when out of range."""
        if self.layers is None:
            return [depth - 1]
        return sorted(set(resolve_block_indices(self.layers, depth, self.layer_index, "attention.layers")))


def resolve_block_indices(indices: List[int], depth: int, layer_index: LayerIndex, what: str) -> list[int]:
    """`indices` as block indices of a `depth`-block ViT (relative ones depth-scaled from 12 blocks), in order."""
    out = []
    for i in indices:
        if layer_index is LayerIndex.relative:
            if not 0 <= i < REFERENCE_DEPTH:
                raise ValueError(f"{what}={list(indices)}: relative indices must lie in [0, {REFERENCE_DEPTH - 1}]")
            j = round(i * (depth - 1) / (REFERENCE_DEPTH - 1))
        else:
            if not -depth <= i < depth:
                raise ValueError(
                    f"{what}={list(indices)}: index {i} is outside the model's {depth} blocks "
                    f"(allowed: 0..{depth - 1}, or negative from the end)"
                )
            j = i % depth
        out.append(j)
    return out


def _enum_value(x):
    return x.value if isinstance(x, Enum) else x
