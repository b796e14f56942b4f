"""UNINEXT's window partition: zero padding to a multiple of the window, exact round trip."""
import torch

from segexp.models.uninext import window_partition, window_unpartition


def test_window_partition_pads_with_zeros_and_round_trips():
    x = torch.randn(2, 5, 7, 3)  # [B, H, W, C], neither side a multiple of 4
    windows, padded = window_partition(x, 4)
    assert padded == (8, 8) and windows.shape == (2 * 2 * 2, 4, 4, 3)
    # window (row 0, col 1) of image 1 covers rows 0-3, columns 4-7: columns 7 and beyond are padding
    w = windows[1 * 4 + 0 * 2 + 1]
    assert torch.equal(w[:, :3], x[1, 0:4, 4:7]) and torch.equal(w[:, 3:], torch.zeros(4, 1, 3))
    # window (row 1, col 0): rows 4-7 of which only row 4 is image
    w = windows[0 * 4 + 1 * 2 + 0]
    assert torch.equal(w[:1], x[0, 4:5, 0:4]) and torch.equal(w[1:], torch.zeros(3, 4, 3))
    assert torch.equal(window_unpartition(windows, 4, padded, (5, 7)), x)


def test_window_partition_of_an_exact_multiple_adds_nothing():
    x = torch.randn(1, 8, 4, 2)
    windows, padded = window_partition(x, 4)
    assert padded == (8, 4) and torch.equal(windows[1], x[0, 4:8])
    assert torch.equal(window_unpartition(windows, 4, padded, (8, 4)), x)
