"""rank_metrics against a brute-force reference (ties, several relevant items, chunking) and the accumulator."""
import pytest
import torch

from segexp.metrics.retrieval import RetrievalMetric, rank_metrics, rank_metrics_from_features


def brute_force(sim, qids, gids, ks=(1, 5, 10)):
    """Per query, in plain Python: rank by (−similarity, gallery index); the textbook definitions."""
    res = {f"R{k}": 0.0 for k in ks} | {"mAP": 0.0, "mINP": 0.0}
    used = 0
    for i in range(len(qids)):
        order = sorted(range(len(gids)), key=lambda j: (-float(sim[i, j]), j))
        rel = [int(gids[j] == qids[i]) for j in order]
        n = sum(rel)
        if n == 0:
            continue
        used += 1
        ranks = [r + 1 for r, x in enumerate(rel) if x]
        for k in ks:
            res[f"R{k}"] += float(ranks[0] <= k)
        res["mAP"] += sum((h + 1) / r for h, r in enumerate(ranks)) / n
        res["mINP"] += n / ranks[-1]
    return {k: 100 * v / used for k, v in res.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_metrics_equals_brute_force_with_ties_and_multiple_relevant(seed):
    g = torch.Generator().manual_seed(seed)
    q, n = 37, 53
    sim = torch.randint(0, 6, (q, n), generator=g).float() / 5  # few distinct values: many ties
    qids = torch.randint(0, 9, (q,), generator=g)
    gids = torch.randint(0, 9, (n,), generator=g)
    gids[:9] = torch.arange(9)  # every query has at least one relevant item, most have several
    want = brute_force(sim, qids, gids)
    for chunk in (1, 7, 1024):
        got = rank_metrics(sim, qids, gids, chunk=chunk)
        for k, v in want.items():
            assert got[k] == pytest.approx(v, abs=1e-4), (k, chunk)


def test_queries_without_a_match_are_counted_and_left_out():
    sim = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    got = rank_metrics(sim, torch.tensor([0, 5]), torch.tensor([0, 1]))
    assert got["queries_without_match"] == 1 and got["R1"] == 100.0 and got["mAP"] == 100.0
    with pytest.raises(ValueError, match="ids"):
        rank_metrics(sim, torch.tensor([0]), torch.tensor([0, 1]))


def test_features_path_and_accumulator_match_the_matrix_path():
    g = torch.Generator().manual_seed(3)
    qf, gf = torch.randn(40, 8, generator=g), torch.randn(25, 8, generator=g)
    qids, gids = torch.randint(0, 5, (40,), generator=g), torch.arange(25) % 5
    ref = rank_metrics(torch.nn.functional.normalize(qf, dim=1) @ torch.nn.functional.normalize(gf, dim=1).t(), qids, gids)
    assert rank_metrics_from_features(qf, gf, qids, gids, chunk=6) == pytest.approx(ref)
    m = RetrievalMetric(chunk=4)
    for s in range(0, 40, 16):  # queries and gallery arrive in different batch sizes
        m.update_queries(qf[s : s + 16], qids[s : s + 16])
    for s in range(0, 25, 10):
        m.update_gallery(gf[s : s + 10], gids[s : s + 10])
    assert m.compute() == pytest.approx(ref)
