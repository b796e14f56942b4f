"""The open_clip towers of the ReID model: projected CLS at a non-square ReID size, and the text tower."""
import torch

from segexp.models.clip import visual_embed
from segexp.models.reid_encoders import image_encoder, text_encoder


def test_open_clip_image_encoder_is_the_projected_cls_at_any_size():
    enc = image_encoder("open_clip", "segexp-ViT-T-16", None)
    x = torch.randn(2, 3, 64, 32)  # 4x2 patches: the position table is interpolated
    v = enc.visual
    t, _ = visual_embed(v, x)
    want = v.ln_post(v.transformer(t)[:, 0]) @ v.proj
    assert torch.allclose(enc(x), want, atol=1e-6) and enc(x).shape == (2, enc.width)


def test_open_clip_text_encoder_width_matches_its_output():
    enc = text_encoder("open_clip", None, clip_name="segexp-ViT-T-16")
    out = enc(["a man in a red jacket", "a woman"])
    assert out.shape == (2, enc.width) and out.requires_grad
