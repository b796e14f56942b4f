"""`protocol=`: each method's official evaluation settings per benchmark, as the official configs state them,
and the two post-processing steps a protocol adds (SCLIP's area threshold, ClearCLIP's crop padding)."""
import pytest
import torch
from hydra.utils import instantiate

from segexp.config import validate
from tests.conftest import compose_cfg
from tests.data.fixtures import write_tree

BENCHMARKS = ["voc21", "voc20", "context60", "context59", "coco_object", "coco_stuff", "cityscapes", "ade20k"]
CLIP_MEAN, IMAGENET_MEAN = [0.48145466, 0.4578275, 0.40821073], [0.485, 0.456, 0.406]


#: ResCLIP's configs/cfg_<bench>.py: temp_thd, attn_rcs_weights, attn_sfr_weights
RESCLIP_TUNED = {"voc21": (0.50, [2.0, 0.3], [2.2, 0.7]), "context60": (0.30, [2.0, 0.3], [1.8, 0.7]),
                 "coco_object": (0.11, [2.0, 0.4], [1.8, 0.7]), "voc20": (0.10, [2.0, 0.6], [2.1, 0.6]),
                 "context59": (0.25, [2.0, 0.4], [1.8, 0.7]), "coco_stuff": (0.11, [2.0, 0.4], [1.8, 0.7]),
                 "cityscapes": (0.10, [2.0, 0.2], [2.1, 0.6]), "ade20k": (0.25, [2.0, 0.3], [2.1, 0.7])}
PROTOCOLS = ["naclip", "sclip", "clearclip", "maskclip", "resclip", "scclip"]


def official(protocol: str, bench: str) -> dict:
    """The settings written out from the official repositories' configs (see conf/protocol/*.yaml for the files)."""
    post = {"whole_resize": "direct" if protocol == "scclip" else "via_input", "normalise_probs": protocol != "scclip"}
    return {**_official(protocol, bench), **post}


def _official(protocol: str, bench: str) -> dict:
    if protocol in ("naclip", "resclip"):  # ResCLIP is built on NACLIP's code and keeps its settings
        return {"short_side": 560 if bench == "cityscapes" else 336, "max_long": 2048,
                "slide_crop": 0 if bench in ("voc21", "voc20") else 224, "slide_stride": 112, "pad_to_patch": False,
                "logit_scale": 40.0, "prob_thd": 0.1 if bench in ("voc21", "context60", "coco_object") else 0.0,
                "area_thd": None, "templates": "openai80", "mean": CLIP_MEAN, "single_background": False}
    if protocol == "sclip":
        return {"short_side": {"cityscapes": 560, "coco_stuff": 448}.get(bench, 336), "max_long": 2048,
                "slide_crop": 224, "slide_stride": 112, "pad_to_patch": False,
                "logit_scale": {"voc21": 65.0, "context60": 50.0, "coco_object": 50.0}.get(bench, 40.0),
                "prob_thd": 0.1 if bench in ("voc21", "context60", "coco_object") else 0.0,
                "area_thd": 0.1 if bench == "voc21" else None, "templates": "openai80", "mean": CLIP_MEAN,
                "single_background": False}
    if protocol == "clearclip":
        city = bench == "cityscapes"
        return {"short_side": 448, "max_long": 2048, "slide_crop": 224 if city else 448, "slide_stride": 224,
                "pad_to_patch": True, "logit_scale": 50.0,
                "prob_thd": {"voc21": 0.5, "context60": 0.15, "coco_object": 0.4}.get(bench, 0.0), "area_thd": None,
                "templates": "openai80", "mean": CLIP_MEAN, "single_background": bench in ("voc21", "coco_object")}
    if protocol == "scclip":
        return {"short_side": 560 if bench == "cityscapes" else 336, "max_long": 2048, "slide_crop": 224,
                "slide_stride": 112, "pad_to_patch": False,
                "logit_scale": {"voc21": 50.0, "coco_object": 55.0}.get(bench, 40.0),
                "prob_thd": {"voc21": 0.15, "context60": 0.15, "coco_object": 0.35}.get(bench, 0.0),
                "area_thd": 0.1 if bench == "voc21" else None, "templates": "openai80", "mean": CLIP_MEAN,
                "single_background": False}
    scale = {"context59": (520, 520), "cityscapes": (512, 1024)}.get(bench, (512, 2048))
    return {"short_side": scale[0], "max_long": scale[1], "slide_crop": 0, "pad_to_patch": False, "prob_thd": 0.0,
            "area_thd": None, "templates": "maskclip85", "mean": IMAGENET_MEAN, "single_background": False}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_gives_each_benchmark_its_official_settings(protocol, tmp_path):
    for bench in BENCHMARKS:
        cfg = compose_cfg(["model=naclip", f"data={bench}", f"data.root={tmp_path}", f"protocol={protocol}"], tmp_path)
        seg, ds = cfg.model.segmenter, cfg.data.dataset
        got = {"short_side": ds.short_side, "max_long": ds.max_long, "slide_crop": seg.slide_crop,
               "slide_stride": seg.slide_stride, "pad_to_patch": seg.pad_to_patch, "logit_scale": seg.logit_scale,
               "prob_thd": seg.prob_thd, "area_thd": seg.area_thd, "templates": seg.templates, "mean": list(ds.mean),
               "pamr_steps": seg.pamr_steps, "whole_resize": seg.whole_resize, "normalise_probs": seg.normalise_probs}
        want = official(protocol, bench)
        single = want.pop("single_background")
        for key, value in want.items():
            assert got[key] == pytest.approx(value) if value is not None else got[key] is None, (protocol, bench, key)
        assert got["pamr_steps"] == 0
        if protocol == "maskclip" and bench in ("voc20", "context59", "coco_stuff", "cityscapes", "ade20k"):
            assert cfg.data.class_file == f"maskclip/{bench}.txt"
        if protocol == "clearclip":
            assert cfg.data.class_file == f"clearclip/{bench}.txt"
        if single:  # the background is one query word, not NACLIP's 26 stuff words
            write_tree(tmp_path / bench, bench, {"voc21": 21, "coco_object": 81}[bench])
            cfg.data.root = str(tmp_path / bench)
            assert instantiate(cfg.data).query_names[0] == ["background"]


def test_a_single_override_beats_the_protocol(tmp_path):
    cfg = compose_cfg(["model=naclip", "data=voc21", f"data.root={tmp_path}", "protocol=sclip",
                       "model.segmenter.logit_scale=30", "data.dataset.short_side=224"], tmp_path)
    assert cfg.model.segmenter.logit_scale == 30 and cfg.data.dataset.short_side == 224
    assert cfg.model.segmenter.area_thd == 0.1  # the rest is still SCLIP's VOC21


def test_resclip_reads_its_tuned_values_from_its_own_protocol_and_its_defaults_elsewhere(tmp_path):
    for bench, protocol in [(b, "resclip") for b in BENCHMARKS] + [("voc21", "sclip"), ("ade20k", "naclip")]:
        cfg = compose_cfg(["model=naclip", "attention=resclip", f"data={bench}", f"data.root={tmp_path}",
                           f"protocol={protocol}"], tmp_path)
        att = cfg.attention
        got = (att.temp_thd, list(att.rcs_weights), list(att.sfr_weights))
        want = RESCLIP_TUNED[bench] if protocol == "resclip" else (0.25, [2.0, 0.3], [2.1, 0.7])
        assert got == want, (protocol, bench)
    cfg = compose_cfg(["model=naclip", "attention=resclip", "data=voc21", f"data.root={tmp_path}", "protocol=resclip",
                       "attention.temp_thd=0.3"], tmp_path)
    assert cfg.attention.temp_thd == 0.3 and list(cfg.attention.sfr_weights) == [2.2, 0.7]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocols_validate_on_synthetic_data_with_their_default_block(protocol, tmp_path):
    cfg = compose_cfg(["model=naclip", "data=synthetic_shapes", "stage=test", f"protocol={protocol}"], tmp_path)
    validate(cfg)
    assert cfg.data.dataset.image_size == 224  # synthetic scenes keep their own size and normalisation


def test_area_threshold_removes_classes_below_a_share_of_the_foreground_as_sclip_does():
    from segexp.models.naclip import remove_small_classes

    # 4 classes over 10 pixels; argmax: class 0 on 2 px, class 1 on 5 px, class 2 on 2 px, class 3 on 1 px
    probs = torch.zeros(4, 1, 10)
    for c, cols in {0: [0, 1], 1: [2, 3, 4, 5, 6], 2: [7, 8], 3: [9]}.items():
        probs[c, 0, cols] = 0.7
    probs[:, 0, :] += 0.1  # every class has some probability everywhere
    out = remove_small_classes(probs.clone(), area_thd=0.2)
    # foreground pixels = 8 (classes 1-3); 0.2 x 8 = 1.6: class 1 (5) and class 2 (2) stay, class 3 (1) is zeroed;
    # the background row is never touched
    assert torch.equal(out[:3], probs[:3]) and torch.equal(out[3], torch.zeros(1, 10))
    assert out.argmax(0)[0].tolist() == [0, 0, 1, 1, 1, 1, 1, 2, 2, 0]


def test_crops_are_zero_padded_centred_to_the_patch_size_and_the_logits_cut_back():
    from segexp.models.naclip import patch_padding

    # ClearCLIP's compute_padsize: (left, right, top, bottom), the odd pixel on the right / bottom
    assert patch_padding(448, 300, 16) == (2, 2, 0, 0)
    assert patch_padding(437, 448, 16) == (0, 0, 5, 6)
    assert patch_padding(224, 224, 16) == (0, 0, 0, 0)
    assert patch_padding(100, 50, 14) == (3, 3, 6, 6)


def test_padded_windows_segment_only_the_real_pixels(tmp_path):
    from segexp.models import NACLIPSegmenter

    seg = NACLIPSegmenter("segexp-ViT-T-16", None, slide_crop=448, slide_stride=224, pad_to_patch=True)
    seg.set_query_features(torch.randn(3, seg.clip.visual.output_dim), [0, 1, 2])
    image = torch.randn(1, 3, 70, 90)  # smaller than the crop: one 70x90 window, padded to 80x96
    calls = []
    window_logits = seg.window_logits
    seg.window_logits = lambda crops: calls.append(tuple(crops.shape[-2:])) or window_logits(crops)
    logits = seg.raw_logits(image)
    assert calls == [(80, 96)] and logits.shape == (1, 3, 70, 90)
    padded = torch.nn.functional.pad(image, (3, 3, 5, 5))
    assert torch.allclose(logits, window_logits(padded)[..., 5:75, 3:93], atol=1e-5)


def test_templates_are_packaged_data_or_a_file(tmp_path):
    from segexp.models import templates

    assert len(templates.load("openai80")) == 80 and len(templates.load("maskclip85")) == 85
    assert templates.load("single") == ("a photo of a {}.",)
    f = tmp_path / "mine.txt"
    f.write_text("a {} in the wild\n\nitap of a {}\n")
    assert templates.load(str(f)) == ("a {} in the wild", "itap of a {}")
    with pytest.raises(FileNotFoundError, match="maskclip85"):
        templates.load("nope")
    (tmp_path / "bad.txt").write_text("no placeholder\n")
    with pytest.raises(ValueError, match="needs one"):
        templates.load(str(tmp_path / "bad.txt"))


def _attention_of(node) -> str:
    """`csa`, `qq`, ... for a per-block strategy; the spec's class for a dense-feature method."""
    return node.strategy.value if "strategy" in node else node._target_.rsplit(".", 1)[1]


@pytest.mark.parametrize("method, attention", [("sclip", "csa"), ("clearclip", "qq"), ("maskclip", "value"),
                                               ("resclip", "ResCLIPSpec"), ("scclip", "SCCLIPSpec")])
def test_a_method_preset_binds_its_attention_and_its_protocol_and_both_stay_one_override_away(method, attention, tmp_path):
    cfg = compose_cfg([f"experiment={method}", "data=voc20", f"data.root={tmp_path}"], tmp_path)
    seg = cfg.model.segmenter
    assert cfg.protocol.name == method and _attention_of(seg.attention) == attention and seg.pretrained == "openai"
    assert seg.slide_crop == official(method, "voc20")["slide_crop"]
    other = compose_cfg([f"experiment={method}", "data=voc20", f"data.root={tmp_path}", "protocol=naclip"], tmp_path)
    assert other.protocol.name == "naclip" and other.model.segmenter.slide_crop == 0  # NACLIP's VOC20: whole image
    assert _attention_of(other.model.segmenter.attention) == attention


def test_a_segmenter_pickles_for_spawned_ranks():
    import pickle

    from segexp.models import NACLIPSegmenter

    seg = NACLIPSegmenter("segexp-ViT-T-16", None, templates="openai80")
    assert pickle.loads(pickle.dumps(seg)).templates == "openai80"
    from segexp.attention import ResCLIPSpec, SCCLIPSpec

    for spec in (ResCLIPSpec(layer_index="relative"), SCCLIPSpec(layer_index="relative")):  # their edits are per pass
        seg = NACLIPSegmenter("segexp-ViT-T-16", None, attention=spec)
        assert type(pickle.loads(pickle.dumps(seg)).dense) is type(seg.dense)
