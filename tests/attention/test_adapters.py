"""`attention=vanilla` leaves every supported upstream block exactly as its library computes it, in eval and in
training (dropout, drop-path and layer scale included, with the same RNG draws), on every open_clip ViT config
installed and on timm's attention options; unsupported variants fail with a clear error."""
import copy

import open_clip
import pytest
import torch
from open_clip.model import _build_vision_tower
from timm.layers import Attention
from timm.models.vision_transformer import VisionTransformer

from segexp.attention import AttentionSpec, install, original_attention
from segexp.attention.timm_vit import StrategyAttention
from segexp.errors import ConfigError

ALL_VANILLA = AttentionSpec(strategy="vanilla", layers=[0, 1])


def _flat(out) -> torch.Tensor:  # CoCa-style towers return (pooled, tokens)
    return torch.cat([o.flatten() for o in out]) if isinstance(out, tuple) else out


def _same_in_train_and_eval(ref: torch.nn.Module, patched: torch.nn.Module, x: torch.Tensor, fn=None) -> None:
    fn = fn or (lambda m, t: _flat(m(t)))
    for train in (False, True):
        ref.train(train), patched.train(train)
        torch.manual_seed(123)
        expected = fn(ref, x)
        torch.manual_seed(123)
        got = fn(patched, x)
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), f"train={train}: {(got - expected).abs().max()}"
    if any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in ref.modules()) or hasattr(ref, "transformer"):
        torch.manual_seed(1)
        a = fn(ref.train(), x)
        torch.manual_seed(2)
        b = fn(ref, x)
        assert not torch.allclose(a, b), "dropout is active in training, so the comparison above tested it"


def _tiny_vision_cfg(name: str) -> dict:
    cfg = dict(open_clip.get_model_config(name)["vision_cfg"])
    patch = cfg.get("patch_size", 16)
    cfg.update(layers=2, width=64, head_width=32, image_size=patch * 3)
    return cfg


OPENCLIP_VITS = sorted(
    name for name in open_clip.list_models()
    if not open_clip.get_model_config(name)["vision_cfg"].get("timm_model_name")
    and not isinstance(open_clip.get_model_config(name)["vision_cfg"].get("layers"), (list, tuple))
)


def _with_attention_dropout(visual, p=0.2):
    for blk in visual.transformer.resblocks:
        if isinstance(blk.attn, torch.nn.MultiheadAttention):
            blk.attn.dropout = p
        else:
            blk.attn.attn_drop.p = p
    return visual


@pytest.mark.parametrize("name", OPENCLIP_VITS)
def test_vanilla_equals_open_clip_on_every_installed_vit_config(name):
    torch.manual_seed(0)
    cfg = _tiny_vision_cfg(name)
    ref = _with_attention_dropout(_build_vision_tower(32, cfg, quick_gelu="quickgelu" in name.lower()))
    patched = copy.deepcopy(ref)
    install(patched, ALL_VANILLA)
    size = cfg["image_size"]
    _same_in_train_and_eval(ref, patched, torch.randn(2, 3, size, size))


CUSTOM_BLOCKS = [dict(qk_norm=True), dict(scale_heads=True), dict(scale_attn_inner=True), dict(scale_attn=True),
                 dict(scale_fc=True), dict(scale_heads=True, scale_attn=True, qk_norm=True)]


@pytest.mark.parametrize("flags", CUSTOM_BLOCKS, ids=lambda f: ",".join(f))
def test_vanilla_equals_open_clips_custom_blocks(flags):
    from open_clip.transformer import VisionTransformer as OpenCLIPViT

    torch.manual_seed(0)
    ref = _with_attention_dropout(OpenCLIPViT(image_size=48, patch_size=16, width=64, layers=2, heads=2, mlp_ratio=2,
                                              output_dim=32, ls_init_value=0.1, **flags))
    patched = copy.deepcopy(ref)
    install(patched, ALL_VANILLA)
    assert type(patched.transformer.resblocks[0].attn).__name__ == "StrategyOpenCLIPAttention"
    _same_in_train_and_eval(ref, patched, torch.randn(2, 3, 48, 48))


def test_scaled_cosine_attention_is_refused_by_name():
    from open_clip.transformer import VisionTransformer as OpenCLIPViT

    vit = OpenCLIPViT(image_size=32, patch_size=16, width=64, layers=1, heads=2, mlp_ratio=2, output_dim=32,
                      scaled_cosine_attn=True)
    with pytest.raises(ConfigError, match="scaled cosine"):
        install(vit, AttentionSpec(strategy="neighbour"))


def _timm_vit(**kw):
    torch.manual_seed(0)
    return VisionTransformer(img_size=48, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=2,
                             num_classes=0, **kw)


TIMM_OPTIONS = {
    "dropouts": dict(attn_drop_rate=0.2, proj_drop_rate=0.2, drop_path_rate=0.2),
    "layer_scale+qk_norm": dict(init_values=0.1, qk_norm=True, attn_drop_rate=0.2),
    "scale_norm+registers": dict(scale_attn_norm=True, reg_tokens=2, attn_drop_rate=0.1),
    "no_class_token": dict(class_token=False, global_pool="avg", attn_drop_rate=0.1),
}


@pytest.mark.parametrize("kw", TIMM_OPTIONS.values(), ids=TIMM_OPTIONS.keys())
def test_vanilla_equals_timm_in_train_and_eval(kw):
    ref = _timm_vit(**kw)
    patched = copy.deepcopy(ref)
    install(patched, ALL_VANILLA)
    assert type(patched.blocks[0].attn) is StrategyAttention and type(ref.blocks[0].attn) is Attention
    assert patched.state_dict().keys() == ref.state_dict().keys()
    _same_in_train_and_eval(ref, patched, torch.randn(2, 3, 48, 48), fn=lambda m, t: m.forward_features(t))


def test_vanilla_equals_timms_gated_attention():
    ref = _timm_vit(attn_drop_rate=0.1)
    for blk in ref.blocks:
        gated = Attention(64, num_heads=2, qkv_bias=True, gated=True, attn_drop=0.2, proj_drop=0.2)
        blk.attn = gated
    patched = copy.deepcopy(ref)
    install(patched, ALL_VANILLA)
    _same_in_train_and_eval(ref, patched, torch.randn(2, 3, 48, 48), fn=lambda m, t: m.forward_features(t))


def test_timm_attn_layer_hook_builds_the_same_model_as_install():
    built = _timm_vit(attn_layer=StrategyAttention)
    adopted = _timm_vit()
    install(adopted, AttentionSpec(strategy="neighbour", std=2.0))
    install(built, AttentionSpec(strategy="neighbour", std=2.0))
    x = torch.randn(1, 3, 48, 48)
    assert torch.equal(built.eval().forward_features(x), adopted.eval().forward_features(x))
    with original_attention(adopted):
        assert torch.allclose(adopted.forward_features(x), _timm_vit().eval().forward_features(x), atol=1e-6)


def test_reduced_arch_returns_the_attention_branch_alone():
    vit = _timm_vit().eval()
    install(vit, AttentionSpec(strategy="value", arch="reduced"))
    blk = vit.blocks[-1]
    x = torch.randn(1, 1 + 9, 64)
    vit.patch_embed(torch.zeros(1, 3, 48, 48))  # the probe learns the 3x3 grid
    assert torch.allclose(blk(x), blk.attn.proj(blk.attn.qkv(blk.norm1(x))[..., 128:]), atol=1e-6)
    with original_attention(vit):  # the upstream block again: residual + MLP
        assert torch.allclose(blk(x), type(blk).forward(blk, x))
        assert not torch.allclose(blk(x), blk.attn.proj(blk.attn.qkv(blk.norm1(x))[..., 128:]), atol=1e-3)
