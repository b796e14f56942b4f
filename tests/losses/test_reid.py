"""ReID losses: GRL, HSIC as a dependence measure, SDM and ID-aware InfoNCE by hand, zero weights out of the graph."""
import math

import pytest
import torch
import torch.nn.functional as F

from segexp.losses.reid import TERMS, ReIDLoss, id_aware_info_nce, nhsic, sdm_loss
from segexp.models.t2i_reid import GradientReversal, dann_lambda


def test_grl_reverses_and_scales_gradients():
    x = torch.randn(4, 3, requires_grad=True)
    y = GradientReversal(0.3)(x)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.allclose(x.grad, -0.3 * torch.arange(3.0).expand(4, 3))
    assert dann_lambda(0.0) == 0.0 and dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(0.5) == pytest.approx(0.98661, abs=1e-5)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_hsic_is_near_zero_for_independent_and_high_for_dependent_features(kernel):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    independent = torch.randn(256, 16, generator=g)
    dependent = torch.relu(x @ torch.randn(16, 16, generator=g)) + 0.1 * torch.randn(256, 16, generator=g)
    lo, hi = nhsic(x, independent, kernel).item(), nhsic(x, dependent, kernel).item()
    assert lo < 0.2 and hi > 0.4 and hi > 3 * lo, (lo, hi)  # the biased estimator has a small floor at n=256
    assert nhsic(x, x, kernel).item() == pytest.approx(1.0, abs=1e-4)
    # centred: adding a constant offset to one side changes nothing
    assert nhsic(x, dependent + 5.0, kernel).item() == pytest.approx(hi, rel=1e-3)


def test_id_aware_info_nce_and_sdm_by_hand():
    a = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=-1)
    b = F.normalize(torch.tensor([[0.8, 0.6], [1.0, 0.0], [0.0, 1.0]]), dim=-1)
    labels = torch.tensor([0, 0, 1])  # rows 0 and 1 are the same person
    s = 10.0
    logits = s * a @ b.t()
    t = torch.tensor([[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1.0]])
    want = 0.5 * (-(t * logits.log_softmax(1)).sum(1).mean() - (t * logits.t().log_softmax(1)).sum(1).mean())
    assert id_aware_info_nce(a, b, labels, torch.tensor(s)).item() == pytest.approx(want.item(), rel=1e-6)
    p = logits.softmax(1)
    kl = (p * (p.log() - torch.log(t + 1e-8))).sum(1).mean()
    pt = logits.t().softmax(1)
    kl_t = (pt * (pt.log() - torch.log(t + 1e-8))).sum(1).mean()
    assert sdm_loss(a, b, labels, s).item() == pytest.approx((kl + kl_t).item(), rel=1e-5)


def _outputs(b=6, e=8, d=12, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    unit = lambda: F.normalize(torch.randn(b, e, generator=g), dim=-1).requires_grad_()  # noqa: E731
    return {"image_embeds": unit(), "text_embeds": unit(), "id_text_embeds": unit(), "cloth_image_embeds": unit(),
            "cloth_text_embeds": unit(), "adv_cloth_embeds": unit(), "fused_embeds": unit(),
            "id_logits": torch.randn(b, classes, generator=g, requires_grad=True),
            "text_logits": torch.randn(b, classes, generator=g, requires_grad=True),
            "id_embeds": torch.randn(b, d, generator=g, requires_grad=True),
            "cloth_embeds": torch.randn(b, d, generator=g, requires_grad=True)}


USES = {"info_nce": ["text_embeds"], "sdm": ["text_embeds"], "cls": ["id_logits", "text_logits"], "bio": ["id_text_embeds"],
        "cloth": ["cloth_image_embeds"], "cloth_adv": ["adv_cloth_embeds"], "cloth_match": ["cloth_image_embeds"],
        "decouple": ["id_embeds", "cloth_embeds"], "fused": ["fused_embeds"]}


@pytest.mark.parametrize("term", TERMS)
def test_a_zero_weight_removes_the_term_from_the_graph(term):
    labels, cloth = torch.tensor([0, 0, 1, 1, 2, 3]), torch.tensor([0, 1, 1, 2, 2, 3])
    only = ReIDLoss(**{t: (1.0 if t == term else 0.0) for t in TERMS})
    out = _outputs()
    res = only(out, labels, cloth)
    assert set(res) == {term, "loss_total"} and res[term].item() > 0
    res["loss_total"].backward()
    assert all(out[k].grad is not None and out[k].grad.abs().sum() > 0 for k in USES[term])
    off = ReIDLoss(**{term: 0.0})
    out = _outputs()
    res = off(out, labels, cloth)
    assert term not in res
    res["loss_total"].backward()
    exclusive = {k for k in USES[term]} - {k for t, ks in USES.items() if t != term for k in ks}
    assert all(out[k].grad is None for k in exclusive), exclusive


def test_cloth_match_uses_the_match_labels():
    loss = ReIDLoss(**{t: (1.0 if t == "cloth_match" else 0.0) for t in TERMS})
    e = F.normalize(torch.randn(4, 8), dim=-1)
    out = {"cloth_image_embeds": e, "cloth_text_embeds": e, "image_embeds": e}
    same = loss(out, torch.arange(4), torch.tensor([0, 0, 1, 1]))["cloth_match"]
    distinct = loss(out, torch.arange(4), torch.arange(4))["cloth_match"]
    assert same.item() != pytest.approx(distinct.item())  # the labels define which pairs are positives
    with pytest.raises(ValueError, match=">= 0"):
        ReIDLoss(decouple=-1)
