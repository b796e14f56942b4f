"""The neighbourhood prior Ω of NACLIP, in closed form.

Ω[i, j] = exp(-((y_i - y_j)^2 + (x_i - x_j)^2) / (2 σ^2)) over the row-major patch grid, with zero rows
and columns for the prefix tokens (CLS, registers): no token is biased towards or from a prefix token.

Upstream builds Ω by convolving one-hot maps with a (2h-1)x(2w-1) window, O(N^2 * window), and caches it
by grid only (so a later σ silently reuses the first σ's matrix). Here the Gaussian separates over the
axes, so Ω = kron(G_y, G_x) costs one outer product, and the cache key holds everything that changes
the values: (grid, σ, prefix, dtype, device).
"""
from __future__ import annotations

import functools

import torch


def _axis_gaussian(n: int, std: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float64)
    g = torch.exp(-((pos[:, None] - pos[None, :]) ** 2) / (2.0 * std * std))  # [n, n], exact in float64
    return g.to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _cached_prior(gh: int, gw: int, std: float, prefix: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    n = gh * gw
    out = torch.empty(prefix + n, prefix + n, dtype=dtype, device=device)  # [P+N, P+N]
    out[:prefix].zero_()
    out[:, :prefix].zero_()
    gy, gx = _axis_gaussian(gh, std, dtype, device), _axis_gaussian(gw, std, dtype, device)
    # Ω[(y1,x1),(y2,x2)] = Gy[y1,y2]·Gx[x1,x2]: one broadcast product written straight into place (= kron)
    torch.mul(gy[:, None, :, None], gx[None, :, None, :], out=out[prefix:, prefix:].view(gh, gw, gh, gw))
    return out


def neighbour_prior(
    grid: tuple[int, int],
    std: float,
    *,
    prefix: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Gaussian neighbourhood bias for a (gh, gw) token grid: [prefix + gh*gw, prefix + gh*gw].

    The returned tensor is shared through the cache: treat it as read-only.
    """
    gh, gw = int(grid[0]), int(grid[1])
    if gh <= 0 or gw <= 0:
        raise ValueError(f"neighbour_prior: grid must be positive, got {grid}")
    if not std > 0:
        raise ValueError(f"neighbour_prior: std must be > 0, got {std}")
    return _cached_prior(gh, gw, float(std), int(prefix), dtype, torch.device(device))


def clear_prior_cache() -> None:
    _cached_prior.cache_clear()
