import math

import torch

from segexp.metrics import per_class_iou_metric, summarise


def test_dataset_level_miou_with_ignore_and_absent_classes():
    m = per_class_iou_metric(4)
    # image 1 and image 2 accumulate into one confusion matrix; 255 is ignored; class 3 never appears
    m.update(torch.tensor([[0, 0, 1, 1, 2]]), torch.tensor([[0, 1, 1, 255, 2]]))
    m.update(torch.tensor([[2, 2, 0]]), torch.tensor([[2, 0, 0]]))
    miou, rows = summarise(m.compute(), ["a", "b", "c", "d"])
    # valid (pred, gt): (0,0) (0,1) (1,1) (2,2) | (2,2) (2,0) (0,0)
    # a: I=2, pred 3 + gt 3 - I = U 4 -> 1/2 ; b: I=1, U=1+2-1=2 -> 1/2 ; c: I=2, U=3+2-2=3 -> 2/3 ; d: empty -> NaN
    assert [r[0] for r in rows] == ["a", "b", "c", "d"]
    assert abs(rows[0][1] - 1 / 2) < 1e-6 and abs(rows[1][1] - 1 / 2) < 1e-6 and abs(rows[2][1] - 2 / 3) < 1e-6
    assert math.isnan(rows[3][1])
    assert abs(miou - (1 / 2 + 1 / 2 + 2 / 3) / 3) < 1e-6
