"""Retrieval metrics: R@1 for paired data, and the standard text→image ReID protocol (R@K, mAP, mINP)."""
from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torchmetrics import Metric

log = logging.getLogger(__name__)


def recall_at_1(sim: torch.Tensor) -> tuple[float, float]:
    """(image→text, text→image) R@1 in percent for a square similarity matrix whose matches are on the diagonal."""
    target = torch.arange(sim.shape[0], device=sim.device)
    return (100.0 * float((sim.argmax(1) == target).float().mean()),
            100.0 * float((sim.argmax(0) == target).float().mean()))


def _rank_chunk(sim: torch.Tensor, qids: torch.Tensor, gids: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-query sums for one chunk: sim [c,G] → hits@k, AP, INP (queries without a match are skipped)."""
    order = torch.sort(sim, dim=1, descending=True, stable=True).indices  # ties: lower gallery index first
    m = (gids[order] == qids[:, None]).float()  # [c, G] relevance in rank order
    n = m.sum(1)
    has = n > 0
    m, n = m[has], n[has]
    c = m.cumsum(1)
    ranks = torch.arange(1, m.shape[1] + 1, device=m.device, dtype=m.dtype)
    out = {f"R{k}": (c[:, min(k, m.shape[1]) - 1] > 0).float().sum() for k in ks}
    out["mAP"] = ((c / ranks) * m).sum(1).div(n).sum()
    last = m.shape[1] - 1 - m.flip(1).argmax(1)  # 0-based rank of the last relevant item
    out["mINP"] = (n / (last + 1).to(n.dtype)).sum()
    out["n"] = has.sum().float()
    return out


def _finish(sums: dict[str, torch.Tensor], total: int) -> dict[str, float]:
    n = float(sums.pop("n"))
    if n < total:
        log.warning("%d of %d queries have no relevant gallery item; they are left out of R@K, mAP and mINP", total - int(n), total)
    res = {k: 100.0 * float(v) / max(n, 1.0) for k, v in sums.items()}
    res["queries_without_match"] = float(total - n)
    return res


@torch.no_grad()
def rank_metrics(sim: torch.Tensor, query_ids: torch.Tensor, gallery_ids: torch.Tensor, ks: Sequence[int] = (1, 5, 10),
                 chunk: int = 1024) -> dict[str, float]:
    """R@K (CMC), mAP and mINP (Ye et al., TPAMI'21), ×100, for text→image retrieval.

    sim [Q,G] (higher = more similar); query_ids [Q], gallery_ids [G]: a gallery item is relevant to a query
    iff their ids are equal (every image of the person, not only the paired one). Sorting runs over chunks of
    `chunk` queries, so memory beyond `sim` is O(chunk·G). Ties are broken by gallery index.
    """
    if sim.shape != (len(query_ids), len(gallery_ids)):
        raise ValueError(f"sim is {tuple(sim.shape)} but there are {len(query_ids)} query and {len(gallery_ids)} gallery ids")
    qids, gids = query_ids.to(sim.device), gallery_ids.to(sim.device)
    sums: dict[str, torch.Tensor] = {}
    for s in range(0, sim.shape[0], chunk):
        for k, v in _rank_chunk(sim[s : s + chunk].float(), qids[s : s + chunk], gids, ks).items():
            sums[k] = sums.get(k, 0) + v
    return _finish(sums, sim.shape[0])


@torch.no_grad()
def rank_metrics_from_features(queries: torch.Tensor, gallery: torch.Tensor, query_ids: torch.Tensor,
                               gallery_ids: torch.Tensor, ks: Sequence[int] = (1, 5, 10), chunk: int = 1024) -> dict[str, float]:
    """`rank_metrics` on cosine similarities computed chunk by chunk: the Q×G matrix is never materialised."""
    q, g = F.normalize(queries.float(), dim=-1), F.normalize(gallery.float(), dim=-1)
    qids, gids = query_ids.to(q.device), gallery_ids.to(g.device)
    sums: dict[str, torch.Tensor] = {}
    for s in range(0, len(q), chunk):
        for k, v in _rank_chunk(q[s : s + chunk] @ g.t(), qids[s : s + chunk], gids, ks).items():
            sums[k] = sums.get(k, 0) + v
    return _finish(sums, len(q))


class RetrievalMetric(Metric):
    """torchmetrics-style accumulation of query / gallery embeddings across batches and DDP ranks.

    `update_queries(emb, ids)` and `update_gallery(emb, ids)` may be called in any order and batch sizes;
    `compute()` gathers every rank's lists (`dist_reduce_fx="cat"`) and ranks with cosine similarity.
    """

    full_state_update = False

    def __init__(self, ks: Sequence[int] = (1, 5, 10), chunk: int = 1024, **kwargs):
        super().__init__(**kwargs)
        self.ks, self.chunk = tuple(ks), int(chunk)
        for name in ("q", "qid", "g", "gid"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update_queries(self, emb: torch.Tensor, ids: torch.Tensor) -> None:
        self.update(queries=emb, query_ids=ids)

    def update_gallery(self, emb: torch.Tensor, ids: torch.Tensor) -> None:
        self.update(gallery=emb, gallery_ids=ids)

    def update(self, queries: torch.Tensor | None = None, query_ids: torch.Tensor | None = None,
               gallery: torch.Tensor | None = None, gallery_ids: torch.Tensor | None = None) -> None:
        if queries is not None:
            self.q.append(queries.detach().float())
            self.qid.append(query_ids.detach().long())
        if gallery is not None:
            self.g.append(gallery.detach().float())
            self.gid.append(gallery_ids.detach().long())

    def compute(self) -> dict[str, float]:
        from torchmetrics.utilities import dim_zero_cat

        if not self.q or not self.g:
            raise RuntimeError("RetrievalMetric.compute() needs queries and a gallery")
        return rank_metrics_from_features(dim_zero_cat(self.q), dim_zero_cat(self.g), dim_zero_cat(self.qid),
                                          dim_zero_cat(self.gid), self.ks, self.chunk)
