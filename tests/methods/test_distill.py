"""DistillModule end to end on synthetic shapes: training beats the untrained student, the teacher cache is reused,
palette PNGs at original size from `stage=predict`, the zero-shot split's metrics and its config check."""
import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY, assert_palette_predictions, logged_metric, predict_in_process, run_cli, run_dirs
from tests.data.fixtures import write_tree
from tests.data.photos import write_photos

ARGS = ["model=distill", "data=synthetic_shapes", *TINY["distill"]]
MODEL_ONLY = ["model=distill", *[a for a in TINY["distill"] if a.startswith("model.")]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distill")
    r = run_cli([*ARGS, "trainer.max_epochs=6"], tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = run_dirs(tmp)
    return tmp, run, r


@pytest.mark.slow
def test_training_doubles_the_untrained_miou(trained, tmp_path):
    _, _, r = trained
    untrained = run_cli([*ARGS, "stage=test"], tmp_path)
    assert untrained.returncode == 0, untrained.stderr[-3000:]
    before, after = logged_metric(untrained, "test/miou"), logged_metric(r, "test/miou")
    assert after >= 2 * before, (before, after)
    assert after > 20.0


@pytest.mark.slow
def test_teacher_cache_is_built_once_and_reused(trained):
    tmp, _, first = trained
    assert "teacher cache: 128 entries" in first.stdout + first.stderr  # 64 images x (CLS, dense tokens)
    again = run_cli([*ARGS, "trainer.max_epochs=1"], tmp)
    assert again.returncode == 0, again.stderr[-3000:]
    out = again.stdout + again.stderr
    assert "feature cache: 128 entries from" in out and "teacher cache: 128 entries" not in out


@pytest.mark.slow
def test_predict_writes_palette_pngs_at_original_size(trained, tmp_path):
    _, run, _ = trained
    root = tmp_path / "VOC2012"
    labels = write_tree(root, "voc21", 21)
    r = run_cli([*MODEL_ONLY, "stage=predict", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "data=folder",
                 f"data.root={root / 'JPEGImages'}", "data.num_workers=0"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (d,) = run_dirs(tmp_path)
    # the checkpoint's 7 classes (background + 6 colours)
    assert_palette_predictions(d, labels, 7, ckpt_path=str(run / "checkpoints" / "last.ckpt"))


@pytest.mark.slow
def test_zero_shot_split_reports_seen_unseen_and_hiou(tmp_path):
    r = run_cli([*ARGS, "model.classifier=text", "model.unseen_classes=[red object,blue object]", "loss.local=masked_image",
                 "trainer.max_epochs=1", "data.splits.train.size=8"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (d,) = run_dirs(tmp_path)
    header = (d / "metrics.csv").read_text().splitlines()[0]
    for key in ("test/miou_seen", "test/miou_unseen", "test/hiou", "train/loss_l_epoch", "train/loss_g_epoch"):
        assert key in header, header


@pytest.mark.slow
def test_zero_shot_with_the_seg_head_is_a_config_error(tmp_path):
    r = run_cli([*ARGS, "model.unseen_classes=[red object]"], tmp_path)
    assert r.returncode == 2 and "needs model.classifier=text" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_predict_from_the_checkpoint_alone_rebuilds_the_trained_model(trained, tmp_path):
    # trained with non-default overrides (another student, a tiny teacher): none of them is repeated here
    _, run, _ = trained
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    expected = write_photos(tmp_path / "photos")
    r = run_cli(["stage=predict", f"ckpt_path={best}", "data=folder", f"data.root={tmp_path / 'photos'}",
                 "data.skip_corrupt=true"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"model rebuilt from the config stored in {best}" in r.stdout + r.stderr
    (d,) = run_dirs(tmp_path)
    ours = predict_in_process(d, ckpt_path=str(best))
    assert sorted(ours) == sorted(expected)
    for name in expected:
        assert np.array_equal(np.asarray(Image.open(d / "predictions" / f"{name}.png")), ours[name]), name
    summary = (d / "predictions" / "summary.csv").read_text().splitlines()[0]
    assert summary.startswith("image,source,height,width,background,red object"), "the checkpoint's class list"


@pytest.mark.slow
def test_an_override_that_contradicts_the_checkpoint_is_refused_naming_both_values(trained, tmp_path):
    _, run, _ = trained
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    write_photos(tmp_path / "photos")
    r = run_cli(["model=distill", "model.student.backbone=efficientnet_b0", "stage=predict", f"ckpt_path={best}",
                 "data=folder", f"data.root={tmp_path / 'photos'}"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert ("model.student.backbone='efficientnet_b0' contradicts the checkpoint" in r.stderr
            and "trained with model.student.backbone='mobilenetv3_small_050'" in r.stderr), r.stderr[-2000:]
