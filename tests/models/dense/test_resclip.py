"""ResCLIP against the official code (yvhangyang/ResCLIP), driven entirely by a reference vector's own meta.

SEGEXP_RESCLIP_VECTOR points at a vector file (default: the public seed-20 file in `tests/reference/resclip/`, with
its FORMAT.md and weight generator). Every dense case (RCS only and RCS + SFR, with SFR's intermediates where
stored) and every segmentor case is checked through segexp's public classes (`ResCLIPSpec`, `ResCLIPDense`,
`NACLIPSegmenter`) with the file's own tolerances.
"""
from __future__ import annotations

import copy

import pytest
import torch

from segexp.attention import ResCLIPSpec
from segexp.errors import ConfigError
from segexp.models.dense import ResCLIPDense
from segexp.models.naclip import NACLIPSegmenter
from tests.reference_vectors import Failures, clip_of, load_vector, rel_err, tolerance, vector_path

ENV = "SEGEXP_RESCLIP_VECTOR"
VECTOR = vector_path(ENV, "resclip/vector_seed20.pt")
ARCH = {"wo_resi": "reduced", "w_resi": "vanilla"}
BASE = {"resclip": "neighbour", "naclip": "neighbour", "sclip": "csa", "clearclip": "qq", "vanilla": "vanilla"}


@pytest.fixture(scope="module")
def vec():
    return load_vector(VECTOR, ENV)


@pytest.fixture(scope="module")
def clip(vec, tmp_path_factory):
    return clip_of(vec, VECTOR, tmp_path_factory.mktemp("weights"))


def spec_of(meta: dict, case: dict, sfr: bool) -> ResCLIPSpec:
    pamr = meta["sfr_first_pass_pamr"]
    return ResCLIPSpec(base=BASE[meta["attn_strategy"]], arch=ARCH[meta["arch"]], std=float(case["gaussian_std"]),
                       rcs_layers=list(meta["rcs_layers"]), rcs_weights=list(case["attn_rcs_weights"]), sfr=sfr,
                       sfr_weights=list(case["attn_sfr_weights"]), temp_thd=float(case["temp_thd"]),
                       delete_same_entity=bool(case["delete_same_entity"]), sfr_pamr_steps=int(pamr["steps"]),
                       sfr_pamr_dilations=list(pamr["dilations"]))


def test_vector_is_complete(vec):
    meta = vec["meta"]
    dense = {k for k, c in meta["dense_cases"].items() if c["use_sfr"]}
    assert dense == set(vec["dense"]) and set(meta["dense_cases"]) - dense == set(vec["dense_rcs"])
    assert set(vec["sfr"]) <= dense and set(meta["segmentor_cases"]) == set(vec["segmentor"])
    assert meta["segmentor_cases"] and meta["dense_cases"] and meta["align_corners"] == 0


def test_resclip_dense_features(vec, clip):
    """dense (RCS + SFR) and dense_rcs (RCS only), and where stored: RCS maps, first-pass probabilities, patch
    labels, the SFR attention."""
    meta, q = vec["meta"], vec["query_features"]
    failures = Failures()
    for key, case in meta["dense_cases"].items():
        model = copy.deepcopy(clip)
        method = ResCLIPDense(model.visual, spec_of(meta, case, case["use_sfr"]))
        image, scale = vec["inputs"][case["input"]], float(case["logit_scale"])
        with torch.no_grad():
            name = "dense" if case["use_sfr"] else "dense_rcs"
            failures.rel(f"{name}[{key}]", method(model.visual, image, q, scale), vec[name][key][:, 1:],
                         tolerance(meta, name))
            tokens, rcs_map = method.trunk(model.visual, image)
            if case["input"] in vec["rcs_attn"]:
                failures.rel(f"rcs_attn[{case['input']}]", rcs_map[0], vec["rcs_attn"][case["input"]],
                             tolerance(meta, "rcs_attn"))
            if key in vec["sfr"]:
                ref = vec["sfr"][key]
                patch = model.visual.conv1.kernel_size[0]
                probs = method.first_pass_probs(method.last_block(model.visual, tokens, rcs_map), image, q, scale, patch)
                labels = method.patch_labels(probs, patch)
                if "first_pass_probs" in ref:
                    failures.abs(f"first_pass_probs[{key}]", probs, ref["first_pass_probs"],
                                 tolerance(meta, "first_pass_probs"))
                failures.agree(f"patch_labels[{key}]", labels[0], ref["patch_labels"], tolerance(meta, "patch_labels"))
                failures.rel(f"attn_sfr[{key}]", method.sfr_attention(labels)[0], ref["attn_sfr"],
                             tolerance(meta, "attn_sfr"))
    assert not failures, "; ".join(failures)


def test_resclip_segmentor(vec, clip):
    meta = vec["meta"]
    failures = Failures()
    for name, case in meta["segmentor_cases"].items():
        seg = NACLIPSegmenter(clip=copy.deepcopy(clip), attention=spec_of(meta, case, True),
                              logit_scale=float(case["logit_scale"]), prob_thd=float(case["prob_thd"]),
                              slide_crop=int(case["slide_crop"]), slide_stride=int(case["slide_stride"]),
                              pamr_steps=int(case["pamr_steps"]), pamr_dilations=list(case["pamr_dilations"]) or (8, 16))
        seg.set_query_features(vec["query_features"], meta["query_idx"])
        image, ref = vec["inputs"][case["input"]], vec["segmentor"][name]
        raw = seg.raw_logits(image)
        probs, pred = seg.postprocess(raw, image, case["ori_shape"])
        failures.abs(f"raw_logits[{name}]", raw, ref["raw_logits"], tolerance(meta, "raw_logits"))
        failures.abs(f"seg_probs[{name}]", probs, ref["seg_probs"], tolerance(meta, "seg_probs"))
        failures.agree(f"pred[{name}]", pred, ref["pred"], meta["tolerances"]["pred_agreement"])
    assert not failures, "; ".join(failures)


def test_resclip_refuses_bad_settings():
    with pytest.raises(ValueError, match="attention.base='value'"):
        ResCLIPSpec(base="value")
    with pytest.raises(ValueError, match="rcs_weights"):
        ResCLIPSpec(rcs_weights=[2.0, 1.5])
    with pytest.raises(ValueError, match="before the last one"):
        ResCLIPSpec(rcs_layers=[11]).resolve_layers(12)
    with pytest.raises(ValueError, match="temp_thd"):
        ResCLIPSpec(temp_thd=2)


def test_resclip_arch_follows_its_base():
    assert ResCLIPSpec(base="csa").last_block().arch.value == "vanilla"  # SCLIP keeps residual and MLP
    assert ResCLIPSpec(base="qq").last_block().arch.value == "reduced"
    assert ResCLIPSpec(base="csa", arch="reduced").last_block().arch.value == "reduced"


def test_resclip_is_refused_by_per_block_models():
    from segexp.attention import install

    with pytest.raises(ConfigError, match="model=naclip"):
        install(torch.nn.Linear(1, 1), ResCLIPSpec())


@pytest.fixture(scope="module")
def tiny_clip():
    from segexp.models.clip import create_clip

    torch.manual_seed(0)
    return create_clip("segexp-ViT-T-16")  # 4 blocks: the ViT-B/16 indices depth-scaled (layer_index=relative)


@pytest.mark.parametrize("base", ["neighbour", "csa", "qq"])
def test_resclip_with_both_parts_off_is_its_base_method(tiny_clip, base):
    """rcs=false, sfr=false leaves the base strategy's own last block: the same features as attention=<base>."""
    from segexp.attention import AttentionSpec
    from segexp.attention.method_specs import BASE_ARCH
    from segexp.models.dense import StrategyDense

    image = torch.randn(1, 3, 224, 288, generator=torch.Generator().manual_seed(1))
    a, b = copy.deepcopy(tiny_clip), copy.deepcopy(tiny_clip)
    with torch.no_grad():
        off = ResCLIPDense(a.visual, ResCLIPSpec(base=base, rcs=False, sfr=False, layer_index="relative"))(a.visual, image)
        ref = StrategyDense(b.visual, AttentionSpec(strategy=base, arch=BASE_ARCH[base]))(b.visual, image)
    assert rel_err(off, ref) < 1e-5


def test_resclip_parts_can_be_ablated(tiny_clip):
    """Each part alone changes the features of the base method (SFR without RCS included)."""
    q = torch.nn.functional.normalize(torch.randn(4, 64, generator=torch.Generator().manual_seed(2)), dim=-1)
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    outs = {}
    for name, kw in {"base": dict(rcs=False, sfr=False), "rcs": dict(sfr=False), "sfr": dict(rcs=False),
                     "both": {}}.items():
        model = copy.deepcopy(tiny_clip)
        spec = ResCLIPSpec(temp_thd=0.0, layer_index="relative", **kw)
        with torch.no_grad():
            outs[name] = ResCLIPDense(model.visual, spec)(model.visual, image, q, 40.0)
    for name in ("rcs", "sfr", "both"):
        assert torch.isfinite(outs[name]).all() and rel_err(outs[name], outs["base"]) > 1e-3, name
    with pytest.raises(RuntimeError, match="query features"):
        model = copy.deepcopy(tiny_clip)
        ResCLIPDense(model.visual, ResCLIPSpec(layer_index="relative"))(model.visual, image)


def test_the_trunk_runs_once_and_only_the_last_block_twice():
    """ResCLIP with SFR: blocks 0..L-2 run once per window batch, the last block once per pass; SC-CLIP: every
    block once (its two last-block branches share one call)."""
    from segexp.attention import SCCLIPSpec, adapter_for
    from segexp.models.clip import create_clip

    for spec, last_calls in ((ResCLIPSpec(layer_index="relative"), 2), (SCCLIPSpec(layer_index="relative"), 1)):
        model = create_clip("segexp-ViT-T-16")
        seg = NACLIPSegmenter("segexp-ViT-T-16", clip=model, attention=spec, slide_crop=64, slide_stride=32)
        seg.set_query_features(torch.nn.functional.normalize(torch.randn(3, 64), dim=-1), [0, 1, 2])
        blocks = adapter_for(model.visual).blocks()
        calls = [0] * len(blocks)
        for i, block in enumerate(blocks):
            block.register_forward_pre_hook(lambda m, a, i=i: calls.__setitem__(i, calls[i] + 1))
        seg(torch.randn(1, 3, 96, 128))  # 2 x 3 windows of 64, one batch
        assert calls == [1] * (len(blocks) - 1) + [last_calls], (type(spec).__name__, calls)
