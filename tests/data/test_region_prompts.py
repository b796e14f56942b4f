"""Region prompts from an instance mask: mask, box, eroded (2-pixel erosion, never empty) and noisy (5 % flips)."""
import numpy as np
import pytest
import torch

from segexp.data.datasets import alpha_from_instance


def _square(size=20, top=4, left=6, side=10):
    m = np.zeros((size, size), bool)
    m[top:top + side, left:left + side] = True
    return m


def test_mask_and_box_prompts():
    m = np.zeros((12, 12), bool)
    m[2, 3] = m[7, 9] = True  # two pixels: the box spans both
    rng = np.random.default_rng(0)
    assert torch.equal(alpha_from_instance(m, "mask", rng)[0], torch.from_numpy(m).float())
    box = alpha_from_instance(m, "box", rng)[0]
    assert box.shape == (12, 12) and box.sum() == 6 * 7 and box[2:8, 3:10].all()


def test_eroded_prompt_shrinks_by_two_pixels_and_falls_back_to_the_mask_when_nothing_is_left():
    rng = np.random.default_rng(0)
    eroded = alpha_from_instance(_square(), "eroded", rng)[0]
    assert torch.equal(eroded, torch.from_numpy(_square(top=6, left=8, side=6)).float())
    tiny = _square(side=3)  # a 5x5 erosion removes it entirely
    assert torch.equal(alpha_from_instance(tiny, "eroded", rng)[0], torch.from_numpy(tiny).float())


def test_noisy_prompt_flips_about_five_percent_reproducibly():
    m = _square(size=200, side=100)
    a = alpha_from_instance(m, "noisy", np.random.default_rng(3))[0]
    b = alpha_from_instance(m, "noisy", np.random.default_rng(3))[0]
    flipped = (a != torch.from_numpy(m).float()).float().mean().item()
    assert torch.equal(a, b) and 0.04 < flipped < 0.06
    assert set(a.unique().tolist()) <= {0.0, 1.0}


def test_unknown_prompt_is_refused():
    with pytest.raises(ValueError, match="mask, box, eroded or noisy"):
        alpha_from_instance(_square(), "scribble", np.random.default_rng(0))
