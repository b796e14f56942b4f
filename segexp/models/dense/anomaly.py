"""SC-CLIP's anomaly tokens: its own LOF variant on squared distances, and the neighbour-mean repair."""
from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def lof_scores(x: Tensor, n_neighbors: int = 30) -> Tensor:
    """Upstream's `lof_pytorch` scores of tokens [B, N, D] → [B, N] — not textbook LOF: distances are SQUARED and
    the reach distance takes the k-distance of the query point, not of the neighbour."""
    k = min(int(n_neighbors), x.shape[1] - 1)  # upstream needs N > k; a smaller grid uses every other token
    # the difference form (as upstream's torch.norm(a - b)**2), without the [N, N, D] difference tensor: the
    # expansion ‖a‖² + ‖b‖² − 2a·b deviates by ~3e-5 relative and can swap the k-th and (k+1)-th neighbours
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist") ** 2  # [B, N, N]
    knn_d, knn_i = d.topk(k + 1, dim=-1, largest=False)
    knn_d, knn_i = knn_d[..., 1:], knn_i[..., 1:]  # drop the first column (the point itself)
    reach = torch.maximum(knn_d, knn_d[..., -1:])
    lrd = k / torch.nan_to_num(reach.mean(-1), nan=1e-6)  # [B, N]
    return (torch.gather(lrd[:, None].expand(-1, x.shape[1], -1), 2, knn_i) / lrd[..., None]).mean(-1)


def anomalies(scores: Tensor, contamination: float = 0.05) -> Tensor:
    """Tokens whose score is above the (1 − contamination) quantile (linear interpolation, strict >): [B, N] bool."""
    thr = torch.quantile(scores.float(), 1 - contamination, dim=-1, keepdim=True)
    return scores > thr


def repair(tokens: Tensor, outliers: Tensor, grid: tuple[int, int]) -> Tensor:
    """Replace every outlier token by the mean of its in-grid, non-outlier 8-neighbours (kept when it has none).

    tokens [B, N, D] row-major over `grid`, outliers [B, N] bool → [B, N, D]. (Upstream maps token n to
    (n // gh, n % gh), the same on its square grids; this is the row-major mapping, which non-square grids need.)"""
    b, n, d = tokens.shape
    gh, gw = grid
    fmap = tokens.transpose(1, 2).reshape(b, d, gh, gw)
    keep = (~outliers).to(tokens.dtype).view(b, 1, gh, gw)
    ring = torch.ones(1, 1, 3, 3, dtype=tokens.dtype, device=tokens.device)
    ring[..., 1, 1] = 0
    total = F.conv2d(F.pad(fmap * keep, (1, 1, 1, 1)), ring.expand(d, 1, 3, 3), groups=d)
    count = F.conv2d(F.pad(keep, (1, 1, 1, 1)), ring)
    mean = total / count.clamp(min=1)
    update = outliers.view(b, 1, gh, gw) & (count > 0)
    return torch.where(update, mean, fmap).reshape(b, d, n).transpose(1, 2)
