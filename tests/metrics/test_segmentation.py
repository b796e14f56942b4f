import math

import pytest
import torch

from segexp.metrics import confusion_metric, scores, write_table


def _two_images():
    m = confusion_metric(5)
    # two images accumulate into one confusion matrix; 255 is ignored (whatever is predicted there);
    # class 3 is predicted once but never labelled; class 4 is neither predicted nor labelled
    m.update(torch.tensor([0, 0, 1, 1, 2, 3]), torch.tensor([0, 1, 1, 255, 2, 255]))
    m.update(torch.tensor([2, 2, 0, 3]), torch.tensor([2, 0, 0, 1]))
    return scores(m.compute())


def test_iou_acc_aacc_equal_a_hand_computation_with_absent_classes_and_ignore_pixels():
    s = _two_images()
    # valid (pred, gt): (0,0) (0,1) (1,1) (2,2) | (2,2) (2,0) (0,0) (3,1)
    # class  I  pred  gt   IoU = I/(pred+gt-I)   Acc = I/gt
    #   0    2   3    3    2/4                   2/3
    #   1    1   1    3    1/3                   1/3
    #   2    2   3    2    2/3                   2/2
    #   3    0   1    0    0/1 = 0 (counts)      NaN (no ground truth)
    #   4    0   0    0    NaN                   NaN
    iou = [50.0, 100 / 3, 200 / 3, 0.0]
    acc = [200 / 3, 100 / 3, 100.0]
    assert s.iou[:4].tolist() == pytest.approx(iou, abs=1e-4)
    assert s.acc[:3].tolist() == pytest.approx(acc, abs=1e-4)
    assert math.isnan(s.iou[4]) and math.isnan(s.acc[3]) and math.isnan(s.acc[4])
    assert s.miou == pytest.approx(sum(iou) / 4, abs=1e-4)
    assert s.macc == pytest.approx(sum(acc) / 3, abs=1e-4)
    assert s.aacc == pytest.approx(5 / 8 * 100, abs=1e-4)  # 5 correct of 8 labelled pixels


def test_per_class_table_is_in_percent_with_summary_rows(tmp_path):
    s = _two_images()
    lines = write_table(s, ["a", "b", "c", "d", "e"], tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "class,iou,acc"
    assert lines[1] == "a,50.0000,66.6667"
    assert lines[4] == "d,0.0000,"
    assert lines[5] == "e,,"
    assert lines[6:] == [f"mIoU,{s.miou:.4f},", f"mAcc,,{s.macc:.4f}", "aAcc,,62.5000"]


def test_empty_ground_truth_gives_nan_scores_not_a_crash():
    s = scores(torch.zeros(3, 3, dtype=torch.long))
    assert math.isnan(s.miou) and math.isnan(s.macc) and math.isnan(s.aacc)
