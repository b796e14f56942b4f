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
import torch.nn.functional as F


def _axis_gaussian(n: int, std: float) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float64)
    return torch.exp(-((pos[:, None] - pos[None, :]) ** 2) / (2.0 * std * std))  # [n, n]


@functools.lru_cache(maxsize=32)
def _cached_prior(gh: int, gw: int, std: float, prefix: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    omega = torch.kron(_axis_gaussian(gh, std), _axis_gaussian(gw, std))  # [gh*gw, gh*gw]
    if prefix:
        omega = F.pad(omega, (prefix, 0, prefix, 0))  # [P+N, P+N]
    return omega.to(device=device, dtype=dtype)


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
