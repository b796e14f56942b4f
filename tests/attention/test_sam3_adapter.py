"""The shared attention group on transformers' SAM3 ViT (tiny random config, built offline)."""
import pytest
import torch

from segexp.attention import AttentionSpec, install, neighbour_prior


def tiny_sam3_vit():
    from transformers import Sam3ViTConfig, Sam3ViTModel

    torch.manual_seed(0)
    cfg = Sam3ViTConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4, image_size=224,
                        patch_size=14, window_size=8, global_attn_indexes=[3, 7], pretrain_image_size=112)
    return Sam3ViTModel(cfg).eval()


X = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def forward(model):
    with torch.no_grad():
        return model(X).last_hidden_state


def test_no_layer_equals_plain_sam3_exactly():
    model = tiny_sam3_vit()
    ref = forward(model)
    assert install(model, AttentionSpec(layers=[])) == []
    assert torch.equal(forward(model), ref)


def test_vanilla_and_zero_scaled_gaussian_equal_the_unmodified_layers():
    model = tiny_sam3_vit()
    ref = forward(model)
    install(model, AttentionSpec(strategy="vanilla", arch="vanilla", layers=[2, 3]))
    assert torch.allclose(forward(model), ref, atol=1e-5)
    install(model, AttentionSpec(strategy="gaussian", arch="vanilla", layers=[2, 3], std=2.0, prior_scale=0.0))
    assert torch.allclose(forward(model), ref, atol=1e-5)
    install(model, AttentionSpec(strategy="gaussian", arch="vanilla", layers=[2, 3], std=2.0))
    assert not torch.allclose(forward(model), ref, atol=1e-4)


def test_zero_scaled_neighbour_equals_kk():
    a, b = tiny_sam3_vit(), tiny_sam3_vit()
    install(a, AttentionSpec(strategy="neighbour", arch="vanilla", layers=[5, 6], std=2.0, prior_scale=0.0))
    install(b, AttentionSpec(strategy="kk", arch="vanilla", layers=[5, 6]))
    assert torch.allclose(forward(a), forward(b), atol=1e-6)


def test_report_names_each_layer_grid_and_windows_use_their_own_prior():
    model = tiny_sam3_vit()
    report = install(model, AttentionSpec(strategy="neighbour", arch="vanilla", layers=[2, 3], std=2.0))
    assert report[0].endswith("(window 8x8)") and report[1].endswith("(global 16x16)")
    attn = model.layers[2].attention
    q, k, v = (torch.randn(2, 4, 64, 16) for _ in range(3))
    from segexp.attention.sam3 import segexp_attention

    out, _ = segexp_attention(attn, q, k, v, scaling=0.25)
    ys, xs = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).float()
    omega = torch.exp(-torch.cdist(pos, pos) ** 2 / (2 * 2.0**2))
    assert torch.allclose(neighbour_prior((8, 8), 2.0), omega, atol=1e-6)
    ref = ((k @ k.transpose(-1, -2)) * 0.25 + omega).softmax(-1) @ v
    assert torch.allclose(out, ref.transpose(1, 2), atol=1e-5)


def test_layers_beyond_depth_and_relative_mapping_on_a_32_block_trunk():
    model = tiny_sam3_vit()
    with pytest.raises(ValueError, match="outside the model's 8 blocks"):
        install(model, AttentionSpec(strategy="neighbour", layers=[9]))
    assert AttentionSpec(layers=[5, 6], layer_index="relative").resolve_layers(32) == [14, 17]
