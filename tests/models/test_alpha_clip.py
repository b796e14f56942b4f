"""Alpha-CLIP teacher: equals CLIP with a zero alpha conv, loads Alpha-CLIP and OpenAI/open_clip files strictly."""
import pytest
import torch

from segexp.models import AlphaCLIPVisual, create_clip


def _clip_and_file(tmp_path, name="segexp-ViT-T-16"):
    torch.manual_seed(1)
    clip = create_clip(name)
    path = tmp_path / "clip_openai_layout.pt"
    torch.save(clip.state_dict(), path)  # OpenAI and open_clip share this key layout
    return clip, path


def test_zero_alpha_conv_equals_clip_visual(tmp_path):
    clip, path = _clip_and_file(tmp_path)
    teacher = AlphaCLIPVisual("segexp-ViT-T-16", pretrained=str(path))
    assert torch.count_nonzero(teacher.conv1_alpha.weight) == 0
    x = torch.randn(2, 3, 224, 224)
    mask = (torch.rand(2, 1, 224, 224) > 0.5).float()
    with torch.no_grad():
        assert torch.allclose(teacher(x, mask), clip.visual(x), atol=1e-5)


def test_alpha_clip_checkpoint_with_renamed_keys_loads_strictly(tmp_path):
    clip, _ = _clip_and_file(tmp_path)
    # Alpha-CLIP releases: visual-only keys, nn.Linear `in_proj`, a trained conv1_alpha, DDP prefix
    sd = {}
    for k, v in clip.visual.state_dict().items():
        k = k.replace("attn.in_proj_weight", "attn.in_proj.weight").replace("attn.in_proj_bias", "attn.in_proj.bias")
        sd["module." + k] = v
    alpha_w = torch.randn(64, 1, 16, 16) * 0.02
    sd["module.conv1_alpha.weight"] = alpha_w
    path = tmp_path / "clip_b16_grit1m_fultune_8xe.pth"
    torch.save(sd, path)
    teacher = AlphaCLIPVisual("segexp-ViT-T-16", pretrained=str(path))
    assert torch.equal(teacher.conv1_alpha.weight, alpha_w)
    assert teacher.source.startswith("alpha-clip:")
    x = torch.randn(1, 3, 224, 224)
    fg, bg = torch.ones(1, 1, 224, 224), torch.zeros(1, 1, 224, 224)
    with torch.no_grad():
        assert not torch.allclose(teacher(x, fg), teacher(x, bg))  # the alpha map now matters
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.training  # frozen teachers stay in eval mode


def test_alpha_normalisation_constants():
    t = AlphaCLIPVisual("segexp-ViT-T-16")
    a = t.normalise_alpha(torch.tensor([0.0, 1.0]))
    assert torch.allclose(a, torch.tensor([-1.9231, 1.9231]), atol=1e-4)


def test_truncated_or_pickled_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"visual.conv1.weight": torch.zeros(1), "x": Evil()}, path)
    with pytest.raises(ValueError, match="refusing to load"):
        AlphaCLIPVisual("segexp-ViT-T-16", pretrained=str(path))
