"""Words in: class names from the command line (synonyms with |, a background class or none) or a class file."""
import pytest

from segexp.config import validate
from segexp.data import DataModule
from segexp.errors import ConfigError
from tests.conftest import compose_cfg
from tests.data.photos import write_photos


def _dm(**kw):
    return DataModule(dataset=lambda **_: None, splits={"predict": {}}, **kw)


def test_class_names_with_synonyms_and_a_background_class():
    dm = _dm(class_names=["cat", "dog|puppy", " grass | lawn "], background="background")
    assert dm.query_names == [["background"], ["cat"], ["dog", "puppy"], ["grass", "lawn"]]
    assert dm.class_names == ["background", "cat", "dog", "grass"] and dm.background_index == 0
    dm = _dm(class_names=["cat"], background="sky|wall")
    assert dm.query_names == [["sky", "wall"], ["cat"]] and dm.class_names == ["sky", "cat"] and dm.background_index == 0


def test_background_none_means_every_pixel_gets_a_named_class():
    dm = _dm(class_names=["cat", "dog"], background="none")
    assert dm.query_names == [["cat"], ["dog"]] and dm.background_index is None


def test_class_files_in_naclip_format_keep_their_own_background():
    dm = _dm(class_file="voc21.txt", background="background")
    assert dm.class_names[0] == "background" and len(dm.class_names) == 21 and dm.background_index == 0
    assert dm.query_names[0][:2] == ["sky", "wall"], "VOC21's background is queried with its stuff words"
    assert _dm(class_file="context59.txt", background="none").background_index is None


@pytest.mark.parametrize("override, message", [
    ("data.class_file=/nope/classes.txt", "data.class_file=/nope/classes.txt: no such file"),
    ("data.class_names=[cat,cat|kitty]", "names a class twice"),
    ("data.class_names=cat", "must be a list of names"),
])
def test_bad_class_names_are_config_errors(override, message, tmp_path):
    write_photos(tmp_path / "photos")
    cfg = compose_cfg(["model=naclip", "stage=predict", "data=folder", f"data.root={tmp_path / 'photos'}", override],
                      tmp_path)
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_open_vocabulary_prediction_needs_words(tmp_path):
    write_photos(tmp_path / "photos")
    base = ["model=naclip", "stage=predict", "data=folder", f"data.root={tmp_path / 'photos'}"]
    with pytest.raises(ConfigError, match=r"names no classes: pass 'data.class_names=\[cat,dog\|puppy,grass\]'"):
        validate(compose_cfg(base, tmp_path))
    validate(compose_cfg([*base, "data.class_names=[red thing,blue thing]"], tmp_path))
