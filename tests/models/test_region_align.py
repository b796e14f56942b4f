"""UNINEXT-style student: region pooling, CLIP initialisation, shapes."""
import pytest
import torch

from segexp.models import RegionAlignNet, UNINEXTViT, create_clip, load_clip_into_uninext, region_pool


def test_region_pool_thresholds_the_raw_mask_per_patch():
    tokens = torch.arange(4, dtype=torch.float32).view(1, 1, 2, 2)  # 2x2 tokens with values 0..3
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, :16, :16] = 1.0  # token (0,0) fully covered
    mask[:, :, :2, 16:32] = 1.0  # token (0,1): 32/256 = 12.5 % > 10 %
    mask[:, :, 16:17, :16] = 1.0  # token (1,0): 16/256 = 6.25 % < 10 %
    out = region_pool(tokens, mask, patch=16, threshold=0.1)
    assert out.shape == (1, 1)
    assert out.item() == pytest.approx((0 + 1) / 2)


def test_region_pool_threshold_is_not_applied_to_the_normalised_alpha():
    tokens = torch.randn(1, 8, 2, 2)
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, :16, :4] = 1.0  # 25 % of token (0,0): valid on the raw mask...
    alpha = (mask - 0.5) / 0.26  # ...but the normalised value of a 25 % patch is negative on average
    assert torch.allclose(region_pool(tokens, mask, 16), tokens[:, :, 0, 0])
    assert not torch.allclose(region_pool(tokens, alpha, 16), tokens[:, :, 0, 0])


def test_region_pool_empty_mask_falls_back_to_all_tokens():
    tokens = torch.randn(2, 8, 3, 3)
    out = region_pool(tokens, torch.zeros(2, 1, 48, 48), patch=16)
    assert torch.allclose(out, tokens.flatten(2).mean(-1))


def test_clip_weights_map_onto_the_uninext_encoder_and_the_projection(tmp_path):
    torch.manual_seed(0)
    clip = create_clip("segexp-ViT-T-16")
    path = tmp_path / "clip.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    net = RegionAlignNet("segexp-ViT-T-16", pretrained=str(path))
    assert torch.equal(net.encoder.patch_embed.weight, clip.visual.conv1.weight)
    assert torch.equal(net.encoder.blocks[2].attn.qkv.weight, clip.visual.transformer.resblocks[2].attn.in_proj_weight)
    assert torch.equal(net.align.proj.weight, clip.visual.proj.t())
    assert torch.count_nonzero(net.align.proj.bias) == 0
    assert torch.equal(net.align.ln_post.weight, clip.visual.ln_post.weight)


def test_uninext_mapping_rejects_a_mismatched_checkpoint():
    enc = UNINEXTViT(width=64, depth=2, heads=4)
    with pytest.raises(ValueError, match="mapping failed"):
        load_clip_into_uninext(enc, {"conv1.weight": torch.zeros(64, 3, 16, 16)})


def test_vit_b16_shapes():
    net = RegionAlignNet("ViT-B-16")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = net(x, torch.ones(1, 1, 224, 224))
        feats = net.encoder(x)
    assert out["res4"].shape == (1, 768, 14, 14)
    assert feats["res4"].shape == (1, 768, 14, 14)
    assert out["seg_logits"].shape == (1, 1, 224, 224)
    assert out["region_embed"].shape == (1, 512)
    assert net.align.proj.weight.shape == (512, 768)
