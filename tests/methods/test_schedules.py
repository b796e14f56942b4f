"""The warm-up cosine schedule: linear warm-up, then cosine decay to min_factor·lr at T_max, flat after."""
import math

import pytest
import torch

from segexp.methods.schedules import warmup_cosine


def test_linear_warmup_then_cosine_to_the_floor():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = warmup_cosine(opt, T_max=20, warmup_steps=4, min_factor=0.1)
    lrs = []
    for _ in range(25):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    for step in range(4, 25):
        t = min((step - 4) / 16, 1.0)
        assert lrs[step] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))), step
    assert lrs[4] == pytest.approx(2.0) and lrs[12] == pytest.approx(1.1) and lrs[20:] == pytest.approx([0.2] * 5)
