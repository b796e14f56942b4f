"""Fidelity to the official NACLIP code, driven entirely by a reference vector's own meta.

SEGEXP_NACLIP_VECTOR points at a vector file (default: the public seed-0 file shipped in `tests/reference/naclip/`,
with its FORMAT.md); `make_weights.py` beside the vector regenerates the random CLIP weights it was made with. Every dense variant and every segmentor case in the
file is checked through segexp's public classes (`NACLIPSegmenter`, `AttentionSpec`, `create_clip`), with the
file's own tolerances.
"""
from __future__ import annotations

import copy

import pytest
import torch

from segexp.attention import AttentionSpec, neighbour_prior
from segexp.models.clip import dense_features, text_features
from segexp.models.naclip import NACLIPSegmenter
from tests.reference_vectors import clip_of, load_vector, vector_path

ENV = "SEGEXP_NACLIP_VECTOR"
VECTOR = vector_path(ENV, "naclip/vector_seed0.pt")
CLIP_NAME = "ViT-B-16"  # the format fixes the architecture (FORMAT.md §2); weights, sizes and settings vary
UPSTREAM_TO_SEGEXP = {"naclip": "neighbour", "kk": "kk", "vanilla": "vanilla", "csa": "csa"}


@pytest.fixture(scope="module")
def vec():
    return load_vector(VECTOR, ENV)


@pytest.fixture(scope="module")
def clip(vec, tmp_path_factory):
    return clip_of(vec, VECTOR, tmp_path_factory.mktemp("weights"), CLIP_NAME)


def spec_of(case: dict) -> AttentionSpec:
    strategy = case["attn_strategy"]
    if strategy not in UPSTREAM_TO_SEGEXP:
        pytest.fail(f"the vector uses upstream strategy {strategy!r}, which segexp does not map")
    return AttentionSpec(strategy=UPSTREAM_TO_SEGEXP[strategy], arch=case["arch"], std=float(case.get("gaussian_std") or 5.0))


def segmenter(clip, case: dict, **kw) -> NACLIPSegmenter:
    return NACLIPSegmenter(clip=copy.deepcopy(clip), attention=spec_of(case), **kw)


def tol(meta, name):
    t = meta["tolerances"]
    fp16 = str(meta["dtypes"].get(name, "float32")) == "float16"
    return t.get(f"{name}_abs_if_fp16" if fp16 else f"{name}_abs", t.get(f"{name}_abs"))


def test_vector_is_complete(vec):
    meta = vec["meta"]
    assert set(meta["dense_cases"]) == set(vec["dense"]) and meta["dense_cases"]
    assert set(meta["segmentor_cases"]) == set(vec["segmentor"]) and meta["segmentor_cases"]


def test_dense_features(vec, clip):
    meta = vec["meta"]
    failures = []
    for key, case in meta["dense_cases"].items():
        seg = segmenter(clip, case)
        with torch.no_grad():
            out = dense_features(seg.clip.visual, vec["inputs"][case["input"]].float())
        ref = vec["dense"][key].float()
        rel = ((out - ref).abs().max() / ref.abs().max()).item()
        if not (out.shape == ref.shape and rel <= meta["tolerances"]["dense_rel"]):
            failures.append(f"{key}: rel {rel:.3g}")
    assert not failures, failures


def test_omega(vec):
    om = vec["omega"]
    grid = tuple(int(g) for g in om["grid"])
    ours = neighbour_prior(grid, float(om["gaussian_std"]), prefix=1)
    assert ours.shape == om["data"].shape
    assert (ours - om["data"].float()).abs().max().item() <= vec["meta"]["tolerances"]["omega_abs"]


def test_segmentor_cases(vec, clip):
    meta = vec["meta"]
    failures = []
    for name, case in meta["segmentor_cases"].items():
        seg = segmenter(clip, case, logit_scale=case["logit_scale"], prob_thd=case["prob_thd"],
                        slide_crop=case["slide_crop"] if case["mode"] == "slide" else 0, slide_stride=case["slide_stride"],
                        pamr_steps=case["pamr_steps"], pamr_dilations=case["pamr_dilations"] or (8, 16))
        seg.set_query_features(vec["query_features"].float(), meta["query_idx"])
        image = vec["inputs"][case["input"]].float()
        ref = vec["segmentor"][name]
        raw = seg.raw_logits(image)
        probs, pred = seg.postprocess(raw, image, case["ori_shape"])
        d_raw = (raw - ref["raw_logits"].float()).abs().max().item()
        d_prob = (probs - ref["seg_probs"].float()).abs().max().item()
        agree = (pred == ref["pred"].long()[0]).float().mean().item()
        if d_raw > tol(meta, "raw_logits") or d_prob > tol(meta, "seg_probs") or agree < meta["tolerances"]["pred_agreement"]:
            failures.append(f"{name}: raw {d_raw:.3g}, probs {d_prob:.3g}, pred agreement {agree:.5f}")
    assert not failures, failures


@pytest.mark.slow  # ~25 s: the 80 templates of every query through ViT-B/16's text tower on CPU
def test_text_features_when_present(vec, clip):
    if "query_features_text" not in vec:
        pytest.skip(f"{VECTOR.name} has no optional query_features_text (FORMAT.md §5.7)")
    import open_clip

    feats = text_features(clip, open_clip.get_tokenizer(CLIP_NAME), vec["meta"]["query_names"])
    assert (feats - vec["query_features_text"].float()).abs().max().item() <= vec["meta"]["tolerances"]["query_features_text_abs"]
