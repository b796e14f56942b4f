"""Weight reading: timm's CLIP towers map onto open_clip's keys and compute the same embedding; HF folders."""
import functools

import pytest
import torch
from open_clip.transformer import QuickGELU, VisionTransformer as OpenCLIPViT
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer as TimmViT

from segexp.weights import WeightsNotFoundError, read_hf_folder, to_open_clip_layout


def test_timm_clip_tower_maps_onto_open_clip_and_computes_the_same_embedding():
    torch.manual_seed(0)
    # timm's vit_*_clip_* towers: pre-norm, CLS pooling, final norm, a bias-free head as CLIP's projection
    timm_vit = TimmViT(img_size=48, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4, pre_norm=True,
                       num_classes=32, global_pool="token", act_layer=QuickGELU,
                       norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-5)).eval()
    with torch.no_grad():
        for p in timm_vit.parameters():  # no zero / one init left: a misplaced LayerNorm or bias would show
            p.add_(0.05 * torch.randn_like(p))
        timm_vit.head.bias.zero_()  # CLIP's projection has no bias; the converter drops it
    sd, extras = to_open_clip_layout(timm_vit.state_dict())
    assert not extras and all(k.startswith("visual.") for k in sd)
    clip_vit = OpenCLIPViT(image_size=48, patch_size=16, width=64, layers=2, heads=2, mlp_ratio=4, output_dim=32,
                           act_layer=QuickGELU).eval()
    clip_vit.load_state_dict({k[len("visual."):]: v for k, v in sd.items()}, strict=True)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(clip_vit(x), timm_vit(x), atol=1e-5)


def test_hf_folder_reads_the_first_known_weight_file(tmp_path):
    save_file({"a": torch.ones(2)}, str(tmp_path / "model.safetensors"))
    torch.save({"a": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    assert torch.equal(read_hf_folder(tmp_path)["a"], torch.ones(2))  # safetensors before the pickle-era .bin
    save_file({"a": torch.full((2,), 3.0)}, str(tmp_path / "open_clip_model.safetensors"))
    assert torch.equal(read_hf_folder(tmp_path)["a"], torch.full((2,), 3.0))


def test_hf_folder_without_weights_names_the_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match=str(tmp_path)):
        read_hf_folder(tmp_path)


def test_random_weights_are_announced_once_with_a_banner_only_for_a_large_model(caplog):
    import logging

    from segexp import weights

    big, small = torch.nn.Linear(5500, 5500), torch.nn.Linear(10, 10)  # 30.3 M and 110 parameters
    with caplog.at_level(logging.INFO, logger="segexp"):
        for _ in range(2):
            weights.warn_random("test big model", big)
            weights.warn_random("test small model", small)
    big_lines = [r for r in caplog.records if "test big model" in r.getMessage()]
    small_lines = [r for r in caplog.records if "test small model" in r.getMessage()]
    assert len(big_lines) == 1 and len(small_lines) == 1
    assert big_lines[0].levelno == logging.WARNING and "!!!!" in big_lines[0].getMessage()
    assert "30 M parameters" in big_lines[0].getMessage() and "RANDOMLY INITIALISED" in big_lines[0].getMessage()
    assert small_lines[0].levelno == logging.INFO and "!" not in small_lines[0].getMessage()
