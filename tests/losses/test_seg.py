import pytest
import torch

from segexp.losses import SegAlignLoss, bce_loss, dice_loss, focal_loss


def test_dice_matches_hand_computation_with_smooth_one():
    logits = torch.tensor([[[0.0, 2.0], [-1.0, 3.0]]])
    target = torch.tensor([[[0, 1], [0, 1]]])
    p = torch.sigmoid(logits).flatten()
    t = target.flatten().float()
    ref = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    assert dice_loss(logits, target).item() == pytest.approx(ref.item(), rel=1e-6)


def test_ignored_pixels_do_not_count():
    logits = torch.tensor([[[5.0, -5.0, 100.0]]])
    t_ign = torch.tensor([[[1, 0, 255]]])
    t_cut = torch.tensor([[[1, 0]]])
    assert bce_loss(logits, t_ign).item() == pytest.approx(bce_loss(logits[..., :2], t_cut).item(), rel=1e-6)
    assert dice_loss(logits, t_ign).item() == pytest.approx(dice_loss(logits[..., :2], t_cut).item(), rel=1e-6)
    assert focal_loss(logits, t_ign).item() == pytest.approx(focal_loss(logits[..., :2], t_cut).item(), rel=1e-6)


def test_seg_align_total_and_zero_weights_remove_terms():
    seg = torch.randn(2, 1, 8, 8, requires_grad=True)
    tgt = (torch.rand(2, 8, 8) > 0.5).long()
    s, t = torch.randn(2, 16, requires_grad=True), torch.randn(2, 16)
    out = SegAlignLoss(1.0, 0.05)(seg, tgt, s, t)
    assert out["loss_total"].item() == pytest.approx((out["loss_seg"] + 0.05 * out["loss_align"]).item(), rel=1e-6)
    seg_only = SegAlignLoss(1.0, 0.0)
    assert not seg_only.needs_teacher
    out = seg_only(seg, tgt)
    assert "loss_align" not in out
    out["loss_total"].backward()
    assert s.grad is None
    with pytest.raises(ValueError):
        SegAlignLoss(0.0, 0.0)
