"""The `attention` options that are more than one block's score function: ResCLIP and SC-CLIP.

Both read middle blocks (attention maps, outputs) and then run the last block their own way, so they are dense
feature methods (`segexp.models.dense`) built on the shared attention mechanism rather than a strategy. Each
dataclass is the Hydra schema of its option (`conf/attention/resclip.yaml`, `scclip.yaml`); every hyper-parameter
of the official code is a field, so each part can be ablated with one override.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

from segexp.attention.spec import (REFERENCE_DEPTH, Arch, AttentionSpec, LayerIndex, StrategyName, _enum_value,
                                  resolve_block_indices)

#: the architecture of the last block each base method is published with (ResCLIP's `w_resi` / `wo_resi`)
BASE_ARCH = {"vanilla": Arch.vanilla, "gaussian": Arch.vanilla, "csa": Arch.vanilla,
             "neighbour": Arch.reduced, "kk": Arch.reduced, "qq": Arch.reduced}


def _pair(values, what: str) -> list[float]:
    values = [float(v) for v in values]
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or not 0 <= values[1] <= 1:
        raise ValueError(f"attention.{what}={values} must be [temperature, weight] with 0 <= weight <= 1")
    return values


@dataclass
class ResCLIPSpec:
    """ResCLIP (Yang et al., CVPR 2025; yvhangyang/ResCLIP) on top of a last-block strategy.

    RCS: the last block's attention A becomes τ_r·((1 − λ_r)·A + λ_r·mean of the q·k attention maps of
    `rcs_layers`). SFR: a first pass gives a patch class map (PAMR-refined, thresholded at `temp_thd`); its
    same-class affinity (distance-decayed across other classes when `delete_same_entity`, 1-D blurred with
    σ = `std`) is mixed into the last block's logits, τ_s·((1 − λ_s)·L + λ_s·S), for a second pass of that block.
    """

    base: StrategyName = StrategyName.neighbour
    arch: Optional[Arch] = None  # None: the base's own (csa / vanilla keep residual + MLP, others reduced)
    std: float = 5.0  # σ of the base's prior Ω and of SFR's blur
    prior_scale: float = 1.0
    rcs: bool = True
    rcs_layers: List[int] = field(default_factory=lambda: [5, 6, 7, 8])
    rcs_weights: List[float] = field(default_factory=lambda: [2.0, 0.3])  # τ_r, λ_r
    sfr: bool = True
    sfr_weights: List[float] = field(default_factory=lambda: [2.1, 0.7])  # τ_s, λ_s
    temp_thd: float = 0.25  # first-pass pixels less confident than this are labelled 0
    delete_same_entity: bool = True
    sfr_pamr_steps: int = 10  # the first pass's PAMR (fixed upstream; 0 = off)
    sfr_pamr_dilations: List[int] = field(default_factory=lambda: [8, 16])
    layer_index: LayerIndex = LayerIndex.absolute

    def __post_init__(self) -> None:
        self.base = StrategyName(_enum_value(self.base))
        if self.base.value not in BASE_ARCH:
            raise ValueError(f"attention.base={self.base.value!r}: ResCLIP needs a base with an attention map "
                             f"({', '.join(BASE_ARCH)})")
        self.arch = BASE_ARCH[self.base.value] if self.arch is None else Arch(_enum_value(self.arch))
        self.layer_index = LayerIndex(_enum_value(self.layer_index))
        AttentionSpec(strategy=self.base, std=self.std, prior_scale=self.prior_scale)  # the shared range checks
        self.rcs_layers = [int(i) for i in self.rcs_layers]
        if self.rcs and not self.rcs_layers:
            raise ValueError("attention.rcs_layers is empty: name the middle blocks RCS averages, or set attention.rcs=false")
        self.rcs_weights = _pair(self.rcs_weights, "rcs_weights")
        self.sfr_weights = _pair(self.sfr_weights, "sfr_weights")
        if not 0 <= float(self.temp_thd) <= 1:
            raise ValueError(f"attention.temp_thd={self.temp_thd} must lie in [0, 1] (a probability)")
        if int(self.sfr_pamr_steps) < 0:
            raise ValueError(f"attention.sfr_pamr_steps={self.sfr_pamr_steps} must be >= 0")
        self.sfr_pamr_dilations = [int(d) for d in self.sfr_pamr_dilations]

    def last_block(self) -> AttentionSpec:
        return AttentionSpec(strategy=self.base, std=self.std, prior_scale=self.prior_scale, arch=self.arch)

    def rcs_blocks(self, depth: int) -> list[int]:
        if not self.rcs:
            return []
        # relative indices on a shallow ViT may land on one block twice: each block's map counts once
        out = sorted(set(resolve_block_indices(self.rcs_layers, depth, self.layer_index, "attention.rcs_layers")))
        if max(out) >= depth - 1:
            raise ValueError(f"attention.rcs_layers={self.rcs_layers}: RCS reads blocks before the last one "
                             f"(0..{depth - 2} in a {depth}-block ViT)")
        return out

    def resolve_layers(self, depth: int) -> list[int]:
        """Every block this method reads or changes (the config check calls this with the model's depth)."""
        return sorted(set(self.rcs_blocks(depth)) | {depth - 1})


@dataclass
class SCCLIPSpec:
    """SC-CLIP (Bai et al.; SuleBai/SC-CLIP): self-calibrated CLIP.

    Indices name the 0-based block whose OUTPUT is read (upstream's `feats_list[i]`). Anomaly tokens of the
    penultimate block's output (upstream's LOF variant) are replaced by their neighbours' mean (`repair`); patch
    tokens are aggregated by the cosine similarity of block `pre_adjust_idx` (repaired) before and of
    `post_adjust_idx` after the last block (`aggregate`, entries below `beta` dropped); the last block's attention
    averages softmax(k kᵀ) with a softmax of the centred pre-adjust similarity (`self_adjust`); the outputs of blocks
    `multi_start_idx … multi_end_idx − 1`, summed, go through the same last block and are added (`multi_level`).
    """

    pre_adjust_idx: int = 8
    post_adjust_idx: int = 3
    multi_start_idx: int = 3
    multi_end_idx: int = 10
    res_cls: float = 0.3  # weight of the CLS token added back after the last block
    beta: float = 0.4
    lof_neighbors: int = 30
    lof_contamination: float = 0.05
    repair: bool = True
    aggregate: bool = True
    self_adjust: bool = True
    multi_level: bool = True
    layer_index: LayerIndex = LayerIndex.absolute

    def __post_init__(self) -> None:
        self.layer_index = LayerIndex(_enum_value(self.layer_index))
        if int(self.lof_neighbors) < 1:
            raise ValueError(f"attention.lof_neighbors={self.lof_neighbors} must be >= 1")
        if not 0 < float(self.lof_contamination) < 1:
            raise ValueError(f"attention.lof_contamination={self.lof_contamination} must lie in (0, 1)")
        for key in ("res_cls", "beta"):
            if not math.isfinite(float(getattr(self, key))):
                raise ValueError(f"attention.{key} must be a finite number")

    def blocks(self, depth: int) -> dict[str, int]:
        """The block indices (pre, post, start, end; end exclusive) for a `depth`-block ViT."""
        names = ("pre_adjust_idx", "post_adjust_idx", "multi_start_idx")
        out = dict(zip(names, resolve_block_indices([getattr(self, n) for n in names], depth, self.layer_index,
                                                    "attention.pre_adjust_idx/post_adjust_idx/multi_start_idx")))
        end = int(self.multi_end_idx)
        if self.layer_index is LayerIndex.relative:
            end = round(end * (depth - 1) / (REFERENCE_DEPTH - 1))
        out["multi_end_idx"] = end
        last = depth - 2  # the penultimate block's output is the last one the trunk gives
        for name, i in out.items():
            if not 0 <= i <= last + (name == "multi_end_idx"):
                raise ValueError(f"attention.{name}={getattr(self, name)} reads block {i}: SC-CLIP reads outputs "
                                 f"of blocks 0..{last} of a {depth}-block ViT")
        if self.multi_level and not out["multi_start_idx"] < out["multi_end_idx"]:
            raise ValueError(f"attention.multi_start_idx={self.multi_start_idx} must be below "
                             f"multi_end_idx={self.multi_end_idx} (an empty multi-level sum)")
        return out

    def resolve_layers(self, depth: int) -> list[int]:
        """Every block whose output this method reads (the range's end is exclusive), and the last one it runs."""
        idx = self.blocks(depth)
        multi = range(idx["multi_start_idx"], idx["multi_end_idx"]) if self.multi_level else []
        return sorted({idx["pre_adjust_idx"], idx["post_adjust_idx"], depth - 2, *multi, depth - 1})


#: the `_target_` of every `attention` option → its spec class
SPECS = {f"segexp.attention.{cls.__name__}": cls for cls in (AttentionSpec, ResCLIPSpec, SCCLIPSpec)}
#: the Hydra schema each `conf/attention/*.yaml` names (`/schema/attention@_here_: <name>`) → its spec class
SCHEMAS = {"base": AttentionSpec, "resclip": ResCLIPSpec, "scclip": SCCLIPSpec}


def spec_from_config(node: Mapping[str, Any] | Any):
    """An `attention` config node (or an already built spec) → its spec object."""
    if isinstance(node, tuple(SPECS.values())):
        return node
    target = node.get("_target_", "segexp.attention.AttentionSpec")
    cls = SPECS.get(target)
    if cls is None:  # a spec defined outside segexp: its class path
        module, _, name = target.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
    return cls(**{k: v for k, v in node.items() if k != "_target_"})
