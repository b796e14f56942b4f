import torch
import torch.nn.functional as F

from segexp.models.clip import imagenet_templates, text_features


class FakeCLIP:
    """encode_text returns a fixed, unnormalised vector per prompt string."""

    def __init__(self):
        self.table = {}

    def encode_text(self, tokens):
        return torch.stack([self.table.setdefault(t, torch.randn(6) * (1 + len(t))) for t in tokens])


def test_template_ensemble_is_normalise_mean_normalise():
    torch.manual_seed(0)
    clip = FakeCLIP()
    templates = ["a photo of a {}.", "there is a {}.", "a {} in the centre."]
    out = text_features(clip, lambda texts: list(texts), ["red circle", "blue ring"], templates)
    for row, name in zip(out, ["red circle", "blue ring"]):
        each = torch.stack([F.normalize(clip.table[t.format(name)], dim=-1) for t in templates])
        ref = F.normalize(each.mean(0), dim=-1)
        assert torch.allclose(row, ref, atol=1e-6)
        plain_mean = F.normalize(torch.stack([clip.table[t.format(name)] for t in templates]).mean(0), dim=-1)
        assert not torch.allclose(row, plain_mean, atol=1e-3)  # normalising each prompt first matters


def test_openai_imagenet_templates_are_the_80():
    t = imagenet_templates()
    assert len(t) == 80 and t[0]("x") == "a bad photo of a x."
