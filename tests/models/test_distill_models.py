"""SegStudent (timm backbone, its own normalisation, weights from a local file) and CLIPTeacher (CLS unchanged by
the attention group, dense tokens changed by it)."""
import pytest
import torch
import torch.nn.functional as F

from segexp.attention import AttentionSpec
from segexp.data.transforms import CLIP_MEAN, CLIP_STD
from segexp.models import CLIPTeacher, SegStudent, create_clip
from segexp.weights import WeightsNotFoundError

BACKBONE = "mobilenetv3_small_050"


def test_student_shapes():
    s = SegStudent(num_classes=5, backbone=BACKBONE, embed_dim=32).eval()
    out = s(torch.randn(2, 3, 96, 128))
    assert out["proj"].shape == (2, 32, 6, 8)  # stride 16
    assert out["logits"].shape == (2, 5, 96, 128)  # upsampled to the input
    assert s.clip_proj(torch.randn(2, 32)).shape == (2, 32)
    groups = s.param_groups()
    assert sum(p.numel() for g in groups.values() for p in g) == sum(p.numel() for p in s.parameters())


def test_student_renormalises_clip_input_with_its_pretrained_cfg():
    s = SegStudent(num_classes=2, backbone=BACKBONE, embed_dim=16)
    raw = torch.rand(1, 3, 8, 8)
    clip_in = (raw - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    cfg = s.backbone.pretrained_cfg
    want = (raw - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    assert torch.allclose(s.renorm(clip_in), want, atol=1e-5)
    assert cfg["mean"] != CLIP_MEAN  # ImageNet statistics, not CLIP's


def test_student_loads_timm_weights_from_a_local_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    ref = timm.create_model(BACKBONE, pretrained=False)  # a classifier checkpoint, as timm publishes them
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "model.safetensors"))
    s = SegStudent(num_classes=2, backbone=BACKBONE, pretrained=str(tmp_path / "model.safetensors"), embed_dim=16)
    got = dict(s.backbone.named_parameters())
    for name, value in ref.named_parameters():
        if name in got:
            assert torch.equal(got[name], value), name
    assert torch.equal(got["conv_stem.weight"], ref.conv_stem.weight)


def test_student_pretrained_true_offline_names_the_download(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGEXP_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsNotFoundError) as e:
        SegStudent(num_classes=2, backbone=BACKBONE, pretrained=True)
    msg = str(e.value)
    assert "huggingface.co/timm/mobilenetv3_small_050" in msg and "model.student.pretrained" in msg


@pytest.fixture(scope="module")
def clip():
    return create_clip("segexp-ViT-T-16")


def test_teacher_cls_is_clips_own_embedding_whatever_the_attention(clip):
    x = torch.randn(2, 3, 64, 80)
    import copy

    plain = CLIPTeacher(clip=copy.deepcopy(clip), clip_name="segexp-ViT-T-16")
    value = CLIPTeacher(clip=copy.deepcopy(clip), clip_name="segexp-ViT-T-16", attention=AttentionSpec(strategy="value"))
    naclip = CLIPTeacher(clip=copy.deepcopy(clip), clip_name="segexp-ViT-T-16",
                         attention=AttentionSpec(strategy="neighbour", arch="reduced", layers=[2, 3]))
    cg, dense = plain.encode_image_dense(x)
    assert dense.shape == (2, clip.visual.output_dim, 4, 5)
    assert torch.allclose(dense.norm(dim=1), torch.ones(2, 4, 5), atol=1e-5)
    for t in (value, naclip):
        cg2, dense2 = t.encode_image_dense(x)
        assert torch.allclose(cg2, cg, atol=1e-5)  # the CLS path runs the blocks' original attention
        assert not torch.allclose(dense2, dense, atol=1e-3)  # the dense path the installed strategy
    # the dense path is exactly the model with the strategy installed, as NACLIP computes it
    from segexp.models.clip import dense_features

    want = F.normalize(dense_features(naclip.clip.visual, x)[:, 1:], dim=-1).transpose(1, 2).reshape(2, -1, 4, 5)
    assert torch.allclose(naclip.encode_image_dense(x)[1], want, atol=1e-5)


def test_teacher_text_and_masked_images(clip):
    t = CLIPTeacher(clip=clip, clip_name="segexp-ViT-T-16", templates=["a photo of a {}."])
    text = t.encode_text(["cat", "dog"])
    assert text.shape == (2, clip.visual.output_dim) and torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    x = torch.randn(3, 3, 32, 32)
    m = torch.zeros(3, 32, 32, dtype=torch.bool)
    m[:, :16] = True
    got = t.encode_masked(x, m)
    x0 = x.clone()
    x0[:, :, 16:] = 0
    assert torch.allclose(got, t.encode_image_dense(x0, dense=False)[0], atol=1e-6)
