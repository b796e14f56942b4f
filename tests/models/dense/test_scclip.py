"""SC-CLIP against the official code (SuleBai/SC-CLIP), driven entirely by a reference vector's own meta.

SEGEXP_SCCLIP_VECTOR points at a vector file (default: the public seed-20 file in `tests/reference/scclip/`, with
its FORMAT.md and weight generator). Every dense case (its LOF scores and outlier set, the repaired tokens, the final
features) and every segmentor case is checked through segexp's public classes (`SCCLIPSpec`, `SCCLIPDense`,
`NACLIPSegmenter` with SC-CLIP's post-processing settings) with the file's own tolerances.
"""
from __future__ import annotations

import copy

import pytest
import torch

from segexp.attention import SCCLIPSpec
from segexp.models.dense import SCCLIPDense
from segexp.models.dense.anomaly import lof_scores, repair
from segexp.models.naclip import NACLIPSegmenter
from tests.reference_vectors import Failures, clip_of, load_vector, rel_err, tolerance, vector_path

ENV = "SEGEXP_SCCLIP_VECTOR"
VECTOR = vector_path(ENV, "scclip/vector_seed20.pt")
KEYS = ("pre_adjust_idx", "post_adjust_idx", "multi_start_idx", "multi_end_idx", "res_cls", "beta")


@pytest.fixture(scope="module")
def vec():
    return load_vector(VECTOR, ENV)


@pytest.fixture(scope="module")
def clip(vec, tmp_path_factory):
    return clip_of(vec, VECTOR, tmp_path_factory.mktemp("weights"))


def spec_of(meta: dict, case: dict) -> SCCLIPSpec:
    return SCCLIPSpec(**{k: case[k] for k in KEYS}, lof_neighbors=int(meta["lof"]["n_neighbors"]),
                      lof_contamination=float(meta["lof"]["contamination"]))


def test_vector_is_complete(vec):
    meta = vec["meta"]
    assert set(meta["dense_cases"]) == set(vec["dense"]) == set(vec["lof"]) == set(vec["repaired"])
    assert set(meta["segmentor_cases"]) == set(vec["segmentor"]) and meta["segmentor_cases"]
    assert meta["align_corners"] == 0


def test_scclip_dense_features(vec, clip):
    """dense, and the LOF scores, outlier set and repaired tokens behind it."""
    meta = vec["meta"]
    failures = Failures()
    for key, case in meta["dense_cases"].items():
        model = copy.deepcopy(clip)
        method = SCCLIPDense(model.visual, spec_of(meta, case))
        image = vec["inputs"][case["input"]]
        with torch.no_grad():
            failures.rel(f"dense[{key}]", method(model.visual, image), vec["dense"][key], tolerance(meta, "dense"))
            feats, _, grid = method.trunk(model.visual, image)
            patches = feats[max(feats)][:, 1:]  # the penultimate block's output
            outliers, ref = method.outliers(patches), vec["lof"][key]
            if outliers[0].nonzero().flatten().tolist() != ref["outliers"].tolist():
                failures.append(f"lof.outliers[{key}]: {outliers[0].nonzero().flatten().tolist()} != "
                                f"{ref['outliers'].tolist()}")
            failures.rel(f"lof.scores[{key}]", lof_scores(patches, meta["lof"]["n_neighbors"])[0], ref["scores"],
                         tolerance(meta, "lof_scores"))
            failures.rel(f"repaired[{key}]", repair(patches, outliers, grid), vec["repaired"][key],
                         tolerance(meta, "repaired"))
    assert not failures, "; ".join(failures)


def test_scclip_segmentor(vec, clip):
    """SC-CLIP's post-processing: whole images resized straight to the original size, probabilities not
    renormalised, SCLIP's area threshold."""
    meta = vec["meta"]
    failures = Failures()
    for name, case in meta["segmentor_cases"].items():
        seg = NACLIPSegmenter(clip=copy.deepcopy(clip), attention=spec_of(meta, case),
                              logit_scale=float(case["logit_scale"]), prob_thd=float(case["prob_thd"]),
                              area_thd=case["area_thd"], slide_crop=int(case["slide_crop"]),
                              slide_stride=int(case["slide_stride"]), pamr_steps=int(case["pamr_steps"]),
                              pamr_dilations=list(case["pamr_dilations"]) or (8, 16), whole_resize="direct",
                              normalise_probs=False)
        seg.set_query_features(vec["query_features"], meta["query_idx"])
        image, ref = vec["inputs"][case["input"]], vec["segmentor"][name]
        logits = seg.logits(image, case["ori_shape"])
        probs, pred = seg.classify(logits)
        failures.abs(f"logits[{name}]", logits, ref["logits"], tolerance(meta, "logits"))
        failures.abs(f"seg_probs[{name}]", probs, ref["seg_probs"], tolerance(meta, "seg_probs"))
        failures.agree(f"pred[{name}]", pred, ref["pred"], meta["tolerances"]["pred_agreement"])
    assert not failures, "; ".join(failures)


def test_scclip_refuses_bad_settings():
    with pytest.raises(ValueError, match="reads outputs of blocks 0..10"):
        SCCLIPSpec(pre_adjust_idx=11).blocks(12)
    with pytest.raises(ValueError, match="empty multi-level sum"):
        SCCLIPSpec(multi_start_idx=5, multi_end_idx=5).blocks(12)
    with pytest.raises(ValueError, match="lof_contamination"):
        SCCLIPSpec(lof_contamination=0)


def test_scclip_parts_can_be_ablated():
    """Each part switched off changes the features, and the rest still runs (the official code has no switches)."""
    from segexp.models.clip import create_clip

    torch.manual_seed(0)
    clip = create_clip("segexp-ViT-T-16")  # 4 blocks: the ViT-B/16 indices depth-scaled
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    outs = {}
    for part in ("none", "repair", "aggregate", "self_adjust", "multi_level"):
        model = copy.deepcopy(clip)
        spec = SCCLIPSpec(layer_index="relative", **({part: False} if part != "none" else {}))
        with torch.no_grad():
            outs[part] = SCCLIPDense(model.visual, spec)(model.visual, image)
    assert all(o.shape == (1, 196, 64) and torch.isfinite(o).all() for o in outs.values())
    for part in ("repair", "aggregate", "self_adjust", "multi_level"):
        assert rel_err(outs[part], outs["none"]) > 1e-3, part
