"""Distillation losses: hand-computed InfoNCE, the bank never holding the positive, a sharp W_attn, the local
loss with one class, CE ignoring 255, and zero weights leaving terms out of the graph."""
import math

import pytest
import torch
import torch.nn.functional as F

from segexp.losses.distill import (DistillLoss, TeacherBank, attention_pool, info_nce, local_contrast, pair_prototypes,
                                   present_pairs, sample_ids)


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_info_nce_equals_hand_computation_with_bank():
    q, k, bank = _unit(3, 8, seed=1), _unit(3, 8, seed=2), _unit(4, 8, seed=3)
    tau = 0.07
    got = info_nce(q, k, tau, bank)
    want = 0.0
    for i in range(3):
        pos = math.exp(float(q[i] @ k[i]) / tau)
        negs = sum(math.exp(float(q[i] @ k[j]) / tau) for j in range(3) if j != i)
        negs += sum(math.exp(float(q[i] @ b) / tau) for b in bank)
        want += -math.log(pos / (pos + negs))
    assert got.item() == pytest.approx(want / 3, rel=1e-5)


def test_positive_is_never_a_negative_even_when_the_bank_holds_it():
    """The bank holds the same sample's teacher CLS (seen last epoch): masked by id, so the loss equals the
    loss without that entry."""
    q, k = _unit(2, 8, seed=4), _unit(2, 8, seed=5)
    keys = ["ds:0", "ds:1"]
    bank = TeacherBank(8)
    other = _unit(3, 8, seed=6)
    bank.enqueue(other, sample_ids(["ds:7", "ds:8", "ds:9"]))
    bank.enqueue(k[:1], sample_ids(keys[:1]))  # the positive of row 0
    feats, mask = bank.negatives(sample_ids(keys))
    assert mask.tolist() == [[False, False, False, True], [False, False, False, False]]
    with_pos = info_nce(q, k, 0.07, feats, mask)
    # row 0 without the duplicate; row 1 keeps it as a genuine negative (another sample)
    row0 = info_nce(q[:1], k[:1], 0.07, torch.cat([k[1:], other]))
    logits1 = torch.cat([q[1:] @ k.t(), q[1:] @ feats.t()], 1) / 0.07
    row1 = F.cross_entropy(logits1, torch.tensor([1]))
    assert with_pos.item() == pytest.approx((row0.item() + row1.item()) / 2, rel=1e-5)
    # flipped variants of one image share its id
    assert sample_ids(["ds:3"]).item() == sample_ids(["ds:3:hflip"]).item()


def test_bank_is_filled_after_the_loss():
    loss = DistillLoss(w_local=0, w_ce=0, bank_size=4)
    f = torch.randn(2, 8, 3, 3)
    cg = _unit(2, 8, seed=7)
    first = loss({"proj": f, "logits": torch.zeros(2, 2, 3, 3)}, torch.zeros(2, 3, 3, dtype=torch.long), ["a:0", "a:1"], cg)
    # the first batch saw an empty bank: plain in-batch InfoNCE
    _, fg = attention_pool(cg, f.flatten(2), 0.07)
    assert first["loss_g"].item() == pytest.approx(info_nce(fg, cg, 0.07).item(), rel=1e-5)
    assert loss.bank.filled == 2 and torch.allclose(loss.bank.feats[:2], cg)


def test_w_attn_is_sharp_for_non_uniform_inputs_and_sqrt_c_would_flatten_it():
    torch.manual_seed(0)
    cg = _unit(1, 64, seed=8)
    f = torch.randn(1, 64, 16)
    f[0, :, 3] = cg[0] * 5  # one token aligned with the CLS
    w, fg = attention_pool(cg, f, 0.07)
    assert w.shape == (1, 16) and torch.allclose(w.sum(-1), torch.ones(1))
    assert w[0].argmax() == 3 and w[0, 3] > 0.9
    assert torch.allclose(fg, torch.einsum("bl,bcl->bc", w, f))
    flat, _ = attention_pool(cg, f, math.sqrt(64))  # the reference code's divisor on unit vectors
    assert (flat.max() - flat.min()) < 0.05  # ~ uniform: global average pooling


def test_present_pairs_and_pair_prototypes_match_a_hand_mean():
    mask = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255], [2, 2, 255, 255]]])
    pairs = present_pairs(mask, 3)
    assert pairs.tolist() == [[0, 0], [0, 1], [0, 2]]
    feats = torch.arange(2 * 2 * 2, dtype=torch.float).view(1, 2, 2, 2)  # a 2x2 grid: each cell = one 2x2 block
    protos = pair_prototypes(feats, mask, pairs, 3)
    assert torch.allclose(protos, feats[0].flatten(1).t()[:3])  # class c sits exactly on cell c
    # at label resolution, a cell's weight is its fraction of the class
    fine = torch.randn(1, 2, 4, 4)
    p = pair_prototypes(fine, mask, pairs, 3)
    assert torch.allclose(p[1], fine[0][:, mask[0] == 1].mean(1))


def test_local_loss_is_non_zero_with_a_single_class():
    loss = DistillLoss(w_global=0, w_ce=0)
    mask = torch.zeros(1, 8, 8, dtype=torch.long)  # one image, one class
    student = {"proj": torch.randn(1, 16, 4, 4, requires_grad=True), "logits": torch.zeros(1, 3, 8, 8)}
    out = loss(student, mask, ["x:0"], teacher_dense=torch.randn(1, 16, 4, 4), num_classes=3)
    assert out["loss_l"].item() > 0.01
    out["loss_total"].backward()
    assert student["proj"].grad.abs().sum() > 0
    # infonce alone needs another pair; with two classes it is a proper contrast
    s, t = _unit(2, 16, seed=9), _unit(2, 16, seed=10)
    assert local_contrast(s[:1], t[:1], torch.tensor([0]), 0.07, "infonce").item() == 0.0
    assert local_contrast(s, t, torch.tensor([0, 1]), 0.07, "infonce").item() > 0


def test_ce_ignores_255():
    loss = DistillLoss(w_global=0, w_local=0)
    logits = torch.randn(1, 3, 4, 4)
    mask = torch.randint(0, 3, (1, 4, 4))
    mask[0, :2] = 255
    base = loss({"proj": torch.zeros(1, 4, 2, 2), "logits": logits}, mask, ["x"])["loss_ce"]
    changed = logits.clone()
    changed[..., :2, :] = torch.randn(1, 3, 2, 4) * 100  # only ignored pixels change
    again = loss({"proj": torch.zeros(1, 4, 2, 2), "logits": changed}, mask, ["x"])["loss_ce"]
    valid = mask != 255
    want = F.cross_entropy(logits.permute(0, 2, 3, 1)[valid], mask[valid])
    assert base.item() == pytest.approx(want.item(), rel=1e-6) and again.item() == pytest.approx(base.item(), rel=1e-6)


def test_zero_weights_leave_terms_out():
    loss = DistillLoss(w_global=0, w_local=0, w_ce=1)
    out = loss({"proj": torch.zeros(1, 4, 2, 2), "logits": torch.randn(1, 3, 4, 4)}, torch.zeros(1, 4, 4, dtype=torch.long), ["x"])
    assert set(out) == {"loss_ce", "loss_total"} and not loss.needs_teacher
    with pytest.raises(ValueError, match="loss.local"):
        DistillLoss(local="pixels")
    with pytest.raises(ValueError, match="temperatures"):
        DistillLoss(tau_attn=0)
