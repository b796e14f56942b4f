"""A user's own photos, by words, through the real CLI: outputs a person can read, and clean errors."""
import csv
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from segexp.callbacks import palette
from tests.conftest import predict_in_process, run_dirs
from tests.data.photos import write_photos

pytestmark = pytest.mark.slow  # every test here starts the CLI in a subprocess

TINY_NACLIP = ["model=naclip", "model.segmenter.clip_name=segexp-ViT-T-16"]
WORDS = "data.class_names=[red circle,blue square]"


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    return root, write_photos(root)


def test_words_in_masks_out_for_a_folder_of_mixed_photos(cli, tmp_path, photos):
    root, expected = photos
    r = cli([*TINY_NACLIP, "stage=predict", "data=folder", f"data.root={root}", WORDS, "data.skip_corrupt=true"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 of 4 'predict' samples are unreadable and skipped" in r.stdout + r.stderr
    (run,) = run_dirs(tmp_path)
    out = run / "predictions"
    ours = predict_in_process(run)
    assert sorted(ours) == sorted(expected)
    for name, (h, w) in expected.items():
        png = Image.open(out / f"{name}.png")  # the folder tree is mirrored: trip/day2/harbour.png
        assert png.mode == "P" and png.size == (w, h) and png.getpalette()[:9] == palette()[:3].flatten().tolist()
        assert np.array_equal(np.asarray(png), ours[name]), name
        overlay = Image.open(out / f"{name}_overlay.jpg")
        assert overlay.height >= h and overlay.width > w, "the overlay has a legend panel beside the image"
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [row["image"] for row in rows] == sorted(expected)
    for row in rows:
        areas = [float(row[c]) for c in ("background", "red circle", "blue square")]
        assert abs(sum(areas) - 100.0) < 0.01
        counts = np.bincount(ours[row["image"]].reshape(-1), minlength=3) / ours[row["image"]].size * 100
        assert np.allclose(areas, counts, atol=1e-3)
    page = (out / "index.html").read_text()
    assert all(f'src="{name}_overlay.jpg"' in page for name in expected) and "broken" not in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no headless browser (apt-get install chromium)")
def test_the_gallery_renders_in_a_real_browser(cli, tmp_path, photos):
    root, expected = photos
    r = cli([*TINY_NACLIP, "stage=predict", "data=folder", f"data.root={root}", WORDS, "data.skip_corrupt=true"])
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    shot = tmp_path / "gallery.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,700", (run / "predictions" / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    page = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert page.shape[:2] == (700, 1200)
    # the overlays were loaded and drawn: their red / blue class colours (VOC palette 1 and 2, blended) appear
    for colour in (palette()[1], palette()[2]):
        blended = 0.5 * colour + 0.5 * np.array([190, 190, 190])
        close = np.abs(page - blended).sum(-1) < 60
        assert close.sum() > 200, f"no pixels of {colour} in the screenshot"


BAD = [
    (["stage=predict", "data=folder", "data.root={photos}"], "names no classes: pass 'data.class_names="),
    (["stage=predict", "data=folder", "data.root={empty}", WORDS], "no images under"),
    (["stage=predict", "data=folder", "data.root={photos}", WORDS, "data.class_file=nope.txt"], "no such file"),
    (["stage=predict", "data=folder", "data.root={photos}", WORDS, "data.batch_size=-1"], "data.batch_size=-1 is out of range"),
]


@pytest.mark.parametrize("args, needle", BAD, ids=["no words", "empty folder", "missing class file", "batch size"])
def test_bad_prediction_inputs_are_one_paragraph(args, needle, cli, tmp_path, photos):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing")
    args = [a.format(photos=photos[0], empty=tmp_path / "empty") for a in args]
    r = cli([*TINY_NACLIP, *args], timeout=300)
    assert r.returncode == 2 and needle in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr + r.stdout and len(r.stderr.strip().splitlines()) == 1
    assert not run_dirs(tmp_path), "nothing is built or written"


def test_a_trained_method_without_a_checkpoint_cannot_predict(cli, tmp_path, photos):
    r = cli(["model=distill", "stage=predict", "data=folder", f"data.root={photos[0]}"], timeout=300)
    assert r.returncode == 2 and "DistillModule needs training before it can predict: pass the trained checkpoint" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout and not run_dirs(tmp_path)


def test_a_corrupt_photo_read_in_a_loader_worker_is_one_paragraph(cli, tmp_path, photos):
    r = cli([*TINY_NACLIP, "stage=predict", "data=folder", f"data.root={photos[0]}", WORDS, "data.num_workers=1"])
    assert r.returncode == 4, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("segexp: data error: sample ") and "broken.jpg" in err and "DataLoader worker" in err
    assert "Traceback" not in r.stderr + r.stdout


def test_with_wandb_the_predictions_go_to_a_table_with_masks(cli, tmp_path, photos):
    import json

    root, expected = photos
    r = cli([*TINY_NACLIP, "stage=predict", "data=folder", f"data.root={root}", WORDS, "data.skip_corrupt=true",
             "logger=wandb"])
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    (table,) = run.glob("wandb/offline-run-*/files/media/table/predict/predictions_*.table.json")
    data = json.loads(table.read_text())
    assert data["columns"] == ["image", "prediction", "background", "red circle", "blue square"]
    assert sorted(row[0] for row in data["data"]) == sorted(expected)
    # offline, W&B keeps the table's media (each image with its prediction mask) in the run artifact it syncs later
    assert all(row[1] == "Image" for row in data["data"])
