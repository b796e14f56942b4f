import pytest
import torch

from segexp.attention import STRATEGIES, AttentionSpec, LayerAttention, install, neighbour_prior


def manual(a, b, v, s, bias=None):
    logits = a @ b.transpose(-1, -2) * s
    if bias is not None:
        logits = logits + bias
    return logits.softmax(-1) @ v


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 1 + 12, 8, generator=g) for _ in range(3)]


def test_each_strategy_matches_its_formula(qkv):
    q, k, v = qkv
    s = 8**-0.5
    om = neighbour_prior((3, 4), 2.0, prefix=1)
    expected = {
        "vanilla": manual(q, k, v, s),
        "gaussian": manual(q, k, v, s, om),
        "neighbour": manual(k, k, v, s, om),
        "kk": manual(k, k, v, s),
        "qq": manual(q, q, v, s),
        "csa": manual(q, q, v, s) + manual(k, k, v, s),
        "value": v,
    }
    assert set(expected) == set(STRATEGIES)
    for name, ref in expected.items():
        out = LayerAttention(name, std=2.0)(q, k, v, grid=(3, 4), prefix=1)
        assert torch.allclose(out, ref, atol=1e-6), name


def test_csa_rows_sum_to_two(qkv):
    q, k, _ = qkv
    eye = torch.eye(q.shape[-2]).expand(2, 3, -1, -1)
    attn = LayerAttention("csa")(q, k, eye, grid=(3, 4), prefix=1)  # v = I exposes the attention matrix
    assert torch.allclose(attn.sum(-1), torch.full(attn.shape[:-1], 2.0), atol=1e-5)


def test_token_count_must_match_the_grid(qkv):
    q, k, v = qkv
    with pytest.raises(RuntimeError, match="grid"):
        LayerAttention("neighbour")(q, k, v, grid=(4, 4), prefix=1)


def tiny_clip():
    from segexp.models import create_clip

    torch.manual_seed(0)
    return create_clip("segexp-ViT-T-16")


def test_install_nothing_or_vanilla_keeps_open_clip_exact():
    model = tiny_clip()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ref = model.encode_image(x)
        assert install(model, AttentionSpec(layers=[])) == []
        report = install(model, AttentionSpec(strategy="vanilla", arch="vanilla", layers=[0, 3]))
        out = model.encode_image(x)
    assert len(report) == 2
    assert torch.allclose(out, ref, atol=1e-5)


def test_install_reports_each_layer_and_changes_only_those():
    model = tiny_clip()
    report = install(model, AttentionSpec(strategy="neighbour", arch="reduced", layers=[1, -1], std=2.0))
    assert [line.split("block ")[1].split("/")[0] for line in report] == ["1", "3"]
    assert all("neighbour std=2" in line for line in report)


def test_layers_out_of_depth_and_relative_mapping():
    spec = AttentionSpec(layers=[12])
    with pytest.raises(ValueError, match="outside the model's 12 blocks"):
        spec.resolve_layers(12)
    assert AttentionSpec(layers=[5, 6], layer_index="relative").resolve_layers(32) == [14, 17]
    assert AttentionSpec().resolve_layers(12) == [11]
    with pytest.raises(ValueError, match="std"):
        AttentionSpec(std=-1.0)


def test_timm_vit_accepts_the_same_attention_group():
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref = vit.forward_features(x)
        install(vit, AttentionSpec(strategy="vanilla", arch="vanilla", layers=[2]))
        same = vit.forward_features(x)
        install(vit, AttentionSpec(strategy="neighbour", arch="reduced", layers=[5, 6], std=2.0))
        changed = vit.forward_features(x)
    assert torch.allclose(same, ref, atol=1e-5)
    assert not torch.allclose(changed, ref, atol=1e-3)


def test_models_with_installed_attention_pickle_for_ddp_spawn():
    import pickle

    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0).eval()
    clip = tiny_clip().eval()
    x = torch.randn(1, 3, 224, 224)
    for model, forward in ((vit, "forward_features"), (clip, "encode_image")):
        install(model, AttentionSpec(strategy="neighbour", arch="reduced", layers=[1, 2], std=2.0))
        copy = pickle.loads(pickle.dumps(model))
        block = (copy.blocks if forward == "forward_features" else copy.visual.transformer.resblocks)[1]
        assert block.forward.args[0] is block  # the copy's patched forward runs on the copy's own block
        with torch.no_grad():
            assert torch.equal(getattr(copy, forward)(x), getattr(model, forward)(x))
