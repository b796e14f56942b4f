import math

import pytest
import torch
import torch.nn.functional as F

from segexp.losses import SymmetricContrastiveLoss


def test_symmetric_loss_equals_hand_computation_on_4x4():
    g = torch.Generator().manual_seed(0)
    img = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    txt = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    scale = torch.tensor(math.log(1 / 0.07))
    s = (img @ txt.t()) / 0.07  # S_ij / τ
    i2t = -sum(math.log(math.exp(s[i, i]) / sum(math.exp(s[i, j]) for j in range(4))) for i in range(4)) / 4
    t2i = -sum(math.log(math.exp(s[i, i]) / sum(math.exp(s[j, i]) for j in range(4))) for i in range(4)) / 4
    loss = SymmetricContrastiveLoss()(img, txt, scale)
    assert loss.item() == pytest.approx((i2t + t2i) / 2, rel=1e-5)


def test_logit_scale_clamp_at_100():
    loss = SymmetricContrastiveLoss(max_scale=100.0)
    p = torch.nn.Parameter(torch.tensor(7.0))
    loss.clamp_(p)
    assert p.exp().item() == pytest.approx(100.0, rel=1e-5)
    q = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    loss.clamp_(q)
    assert q.item() == pytest.approx(math.log(1 / 0.07))


def test_tiny_clip_initial_temperature_is_0_07():
    from segexp.models import create_clip

    m = create_clip("segexp-tinyclip")
    assert m.logit_scale.item() == pytest.approx(math.log(1 / 0.07), rel=1e-6)
