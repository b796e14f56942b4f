"""Any open_clip ViT: patch size, grid, position-embedding interpolation and windows follow the model. Tiny random
copies of the real ViT-B/32, ViT-B/16, ViT-L/14 and ViT-L/14@336 configs (their patch sizes and layouts, 2 blocks)."""
import copy

import open_clip
import pytest
import torch

from segexp.attention import AttentionSpec
from segexp.models import NACLIPSegmenter
from segexp.models.clip import dense_features

ARCHS = ["ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336"]
STRATEGIES = ["vanilla", "neighbour", "gaussian", "kk", "csa", "qq", "value"]


def tiny(name: str, layers: int = 2) -> open_clip.CLIP:
    cfg = copy.deepcopy(open_clip.get_model_config(name))
    cfg["vision_cfg"].update(layers=layers, width=64, head_width=32, image_size=cfg["vision_cfg"]["patch_size"] * 4)
    cfg["text_cfg"].update(layers=1, width=32, heads=2)
    cfg["embed_dim"] = 24
    torch.manual_seed(0)
    return open_clip.CLIP(**cfg).eval()


@pytest.mark.parametrize("name", ARCHS)
def test_vanilla_dense_cls_equals_open_clips_encode_image(name):
    model = tiny(name)
    seg = NACLIPSegmenter(name, clip=model, attention=AttentionSpec(strategy="vanilla", layers=[0, 1]))
    p = model.visual.conv1.kernel_size[0]
    x = torch.randn(2, 3, 4 * p, 4 * p)
    with torch.no_grad():
        assert torch.allclose(dense_features(seg.clip.visual, x)[:, 0], model.encode_image(x), atol=1e-5)


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_segments_a_non_square_image_on_the_models_own_grid(name, strategy):
    model = tiny(name)
    p = model.visual.conv1.kernel_size[0]
    arch = "vanilla" if strategy in ("vanilla", "value", "csa") else "reduced"
    seg = NACLIPSegmenter(name, clip=model, attention=AttentionSpec(strategy=strategy, arch=arch),
                          slide_crop=4 * p, slide_stride=2 * p)
    seg.set_query_features(torch.randn(3, 24), [0, 1, 2])
    calls = []
    window_logits = seg.window_logits
    seg.window_logits = lambda crops: calls.append(tuple(crops.shape)) or window_logits(crops)
    image = torch.randn(1, 3, 5 * p, 7 * p)  # 5x7 patches: 2x3 windows of 4x4 patches
    probs, pred = seg(image, (50, 70))
    assert calls == [(6, 3, 4 * p, 4 * p)]
    assert probs.shape == (3, 50, 70) and pred.shape == (50, 70) and torch.isfinite(probs).all()
    whole = NACLIPSegmenter(name, clip=model, slide_crop=0)  # whole image: the position embedding is interpolated
    whole.set_query_features(torch.randn(3, 24), [0, 1, 2])
    assert whole.raw_logits(image).shape == (1, 3, 5 * p, 7 * p)


def test_a_timm_trunk_image_tower_is_refused_naming_what_is_unsupported():
    cfg = copy.deepcopy(open_clip.get_model_config("ViT-B-16-SigLIP"))
    cfg["vision_cfg"]["timm_model_name"] = "vit_tiny_patch16_224"
    cfg["text_cfg"].update(layers=1, width=32, heads=2)
    cfg.pop("custom_text", None)
    cfg.pop("init_logit_bias", None)
    model = open_clip.CustomTextCLIP(**cfg)
    with pytest.raises(ValueError, match=r"ViT-B-16-SigLIP.*timm trunk.*TimmModel"):
        NACLIPSegmenter("ViT-B-16-SigLIP", clip=model)


@pytest.mark.parametrize("name, method", [(a, m) for a in ARCHS for m in ("resclip-neighbour", "scclip")]
                         + [("ViT-B-16", "resclip-csa"), ("ViT-B-16", "resclip-qq")])
def test_resclip_and_scclip_segment_a_non_square_image_on_every_backbone(name, method):
    """Depth-scaled block indices (layer_index=relative) on a 4-block copy; a grid that is not square."""
    from segexp.attention import ResCLIPSpec, SCCLIPSpec

    model = tiny(name, layers=4)
    p = model.visual.conv1.kernel_size[0]
    spec = (SCCLIPSpec(layer_index="relative", lof_neighbors=8) if method == "scclip" else
            ResCLIPSpec(base=method.split("-")[1], layer_index="relative"))
    seg = NACLIPSegmenter(name, clip=model, attention=spec, slide_crop=0)
    seg.set_query_features(torch.nn.functional.normalize(torch.randn(3, 24), dim=-1), [0, 1, 2])
    image = torch.randn(1, 3, 5 * p, 7 * p)
    probs, pred = seg(image, (50, 70))
    assert probs.shape == (3, 50, 70) and pred.shape == (50, 70) and torch.isfinite(probs).all()
    plain = NACLIPSegmenter(name, clip=tiny(name, layers=4), attention=AttentionSpec(strategy="vanilla"), slide_crop=0)
    plain.set_query_features(seg.query_features, [0, 1, 2])
    assert not torch.allclose(seg.raw_logits(image), plain.raw_logits(image), atol=1e-4)  # the method acts
