"""Dense patch features of an open_clip ViT under an `attention=` option: what NACLIPSegmenter classifies.

`build_dense(visual, spec)` picks the method by the spec's type (`DENSE_METHODS`): a per-block strategy
(`AttentionSpec`: NACLIP, SCLIP, ClearCLIP, MaskCLIP, CLIP), ResCLIP or SC-CLIP. Every method is called as
`method(visual, images, queries, logit_scale) -> [B, N, E]` (patch tokens, row-major, not normalised); the
queries and logit scale are there for methods with a feedback pass (ResCLIP's SFR).
"""
from __future__ import annotations

from segexp.attention import AttentionSpec, ResCLIPSpec, SCCLIPSpec
from segexp.models.dense.resclip import ResCLIPDense
from segexp.models.dense.scclip import SCCLIPDense
from segexp.models.dense.strategy import StrategyDense

DENSE_METHODS = {AttentionSpec: StrategyDense, ResCLIPSpec: ResCLIPDense, SCCLIPSpec: SCCLIPDense}


def build_dense(visual, spec=None):
    """The dense-feature method of `spec` (None: CLIP as trained), installed on `visual`."""
    if spec is None:
        return StrategyDense(visual, None)
    try:
        cls = DENSE_METHODS[type(spec)]
    except KeyError:
        raise TypeError(f"no dense-feature method for {type(spec).__name__}; known: "
                        f"{', '.join(c.__name__ for c in DENSE_METHODS)}") from None
    return cls(visual, spec)


__all__ = ["DENSE_METHODS", "ResCLIPDense", "SCCLIPDense", "StrategyDense", "build_dense"]
