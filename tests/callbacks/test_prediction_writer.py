"""What stage=predict writes for a person: legend overlays, class areas, the gallery page, nested names."""
import numpy as np

from segexp.callbacks import palette
from segexp.callbacks.prediction_writer import area_percentages, gallery_html, prediction_name
from segexp.callbacks.visualiser import overlay, with_legend


def test_overlay_leaves_the_background_and_ignore_uncoloured():
    image = np.full((4, 4, 3), 100, np.uint8)
    labels = np.array([[0, 1, 2, 255]] * 4)
    out = overlay(image, labels, alpha=0.5)
    assert (out[:, 0] == 100).all() and (out[:, 3] == 100).all()
    assert np.allclose(out[0, 1], 0.5 * 100 + 0.5 * palette()[1], atol=1)
    no_background = overlay(image, labels, alpha=0.5, background=None)
    assert np.allclose(no_background[0, 0], 0.5 * 100 + 0.5 * palette()[0], atol=1), "class 0 is a thing here"


def test_legend_lists_exactly_the_classes_present_with_their_colours():
    image = np.full((120, 160, 3), 200, np.uint8)
    labels = np.zeros((120, 160), np.int64)
    labels[10:50, 10:50], labels[60:, 80:] = 2, 4
    out = with_legend(image, labels, ["background", "cat", "dog", "grass", "sky"], background=0)
    assert out.shape[0] >= 120 and out.shape[1] > 160 and (out[:120, :160] == overlay(image, labels)).all()
    panel = out[:, 160:].reshape(-1, 3)
    colours = {tuple(c) for c in panel}
    assert tuple(palette()[2]) in colours and tuple(palette()[4]) in colours, "swatches of the present classes"
    assert tuple(palette()[1]) not in colours and tuple(palette()[3]) not in colours, "absent classes are not listed"


def test_area_percentages_and_nested_names():
    pred = np.array([[0, 0, 1, 1], [1, 1, 1, 2]])
    assert np.allclose(area_percentages(pred, 4), [25.0, 62.5, 12.5, 0.0])
    assert prediction_name({"id": "trip/day2/harbour"}, "x") == "trip/day2/harbour"
    assert prediction_name({"id": "../../etc/passwd"}, "x") == "etc/passwd", "no way out of predictions/"
    assert prediction_name({}, "0_1") == "0_1"


def test_gallery_shows_every_overlay_with_its_main_classes():
    rows = [{"image": "beach", "overlay": "beach_overlay.jpg", "cat": 60.0, "dog": 0.2},
            {"image": "trip/a<b>", "overlay": "trip/a<b>_overlay.jpg", "cat": 1.0, "dog": 99.0}]
    page = gallery_html(rows, ["cat", "dog"], "/runs/x")
    assert page.count("<figure>") == 2 and 'src="beach_overlay.jpg"' in page and "cat 60.0%" in page
    assert "dog 0.2%" not in page, "classes under 0.5 % are left out of the caption"
    assert "a&lt;b&gt;" in page and "<b>trip/a<b>" not in page, "names are escaped"
