import time

import torch

from segexp.attention import clear_prior_cache, neighbour_prior


def brute_force(gh, gw, std, prefix):
    ys, xs = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).double()
    d2 = torch.cdist(pos, pos) ** 2
    om = torch.exp(-d2 / (2 * std**2))
    out = torch.zeros(prefix + gh * gw, prefix + gh * gw, dtype=torch.float64)
    out[prefix:, prefix:] = om
    return out


def test_closed_form_matches_brute_force_on_non_square_grid():
    for grid, std, prefix in [((14, 20), 5.0, 1), ((3, 7), 1.5, 0), ((6, 4), 2.0, 5)]:
        om = neighbour_prior(grid, std, prefix=prefix, dtype=torch.float64)
        ref = brute_force(*grid, std, prefix)
        assert om.shape == ref.shape
        assert torch.allclose(om, ref, atol=1e-12)


def test_prefix_rows_and_columns_are_zero_and_peak_is_one():
    om = neighbour_prior((5, 6), 3.0, prefix=1)
    assert om[0].abs().sum() == 0 and om[:, 0].abs().sum() == 0
    assert torch.allclose(om[1:, 1:].diagonal(), torch.ones(30))


def test_cache_is_keyed_by_std_and_dtype_not_grid_only():
    clear_prior_cache()
    a = neighbour_prior((8, 8), 1.0)
    b = neighbour_prior((8, 8), 4.0)
    assert not torch.allclose(a, b), "upstream's grid-only cache key would return σ=1 again"
    assert neighbour_prior((8, 8), 1.0) is a
    assert neighbour_prior((8, 8), 1.0, dtype=torch.float64).dtype == torch.float64


def test_sam_size_grid_builds_quickly():
    clear_prior_cache()
    t = time.perf_counter()
    om = neighbour_prior((72, 72), 2.0)
    elapsed = time.perf_counter() - t
    assert om.shape == (5184, 5184)
    assert torch.isclose(om[1, 0], torch.tensor(torch.exp(torch.tensor(-1 / 8.0)).item()))
    assert elapsed < 5.0  # the speed target (< 50 ms) is measured by `make bench`


def test_rejects_bad_std_and_grid():
    import pytest

    with pytest.raises(ValueError, match="std"):
        neighbour_prior((4, 4), 0.0)
    with pytest.raises(ValueError, match="grid"):
        neighbour_prior((0, 4), 1.0)
