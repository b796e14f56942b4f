"""Any folder of images: every common type in any case, recursively, EXIF orientation, clean errors."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from segexp.data import DataError, FolderSegDataset
from segexp.data.folder import IMAGE_SUFFIXES
from segexp.data.skip_corrupt import SkipCorrupt
from segexp.errors import ConfigError
from tests.data.photos import scene, write_photos


def test_every_type_recursively_with_ids_mirroring_the_tree(tmp_path):
    expected = write_photos(tmp_path, corrupt=False)
    ds = FolderSegDataset(str(tmp_path), img_suffix=None, short_side=None)
    assert sorted(ds.ids) == sorted(expected)
    for i, name in enumerate(ds.ids):
        item = ds[i]
        assert item["meta"]["ori_shape"] == list(expected[name]) and item["image"].shape[-2:] == expected[name]


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(scene(30, 50))
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    im.save(tmp_path / "phone.jpg", exif=exif)
    item = FolderSegDataset(str(tmp_path), img_suffix=None, short_side=None)[0]
    assert item["meta"]["ori_shape"] == [50, 30], "the image is read as it is displayed"


def test_files_sharing_a_stem_keep_their_type_in_the_id(tmp_path):
    Image.fromarray(scene(20, 20)).save(tmp_path / "a.jpg")
    Image.fromarray(scene(20, 20)).save(tmp_path / "a.png")
    Image.fromarray(scene(20, 20)).save(tmp_path / "b.png")
    assert sorted(FolderSegDataset(str(tmp_path), img_suffix=None).ids) == ["a_jpg", "a_png", "b"]


def test_an_empty_folder_is_a_config_error_before_anything_is_built(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match=rf"no images under {tmp_path}.*\.webp"):
        FolderSegDataset.check_files(tmp_path, {"img_dir": ".", "img_suffix": None, "name": "folder"})
    with pytest.raises(DataError, match="no images under"):
        FolderSegDataset(str(tmp_path), img_suffix=None)


NAMES = st.sampled_from(["a", "b", "img_1", "x y"])
KINDS = st.sampled_from(["good", "corrupt", "text"])
SUFFIXES = st.sampled_from([".jpg", ".JPEG", ".png", ".Png", ".bmp", ".webp", ".tif", ".txt", ".gif"])
FILES = st.lists(st.tuples(st.sampled_from(["", "sub", "sub/deeper"]), NAMES, SUFFIXES, KINDS), max_size=7,
                 unique_by=lambda f: (f[0], f[1], f[2].lower()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=FILES)
def test_folder_contents_give_exactly_the_readable_images_or_a_clean_error(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    readable, listed = set(), set()
    for folder, name, suffix, kind in files:
        path = root / folder / f"{name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        is_image_type = suffix.lower() in IMAGE_SUFFIXES
        if kind == "good" and suffix.lower() not in (".txt", ".gif"):
            fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP", ".tif": "TIFF"}
            Image.fromarray(scene(16, 24)).save(path, format=fmt[suffix.lower()])
        else:
            path.write_bytes(b"\x00\x01 not an image")
        if is_image_type:
            listed.add(path.relative_to(root).as_posix())
            if kind == "good":
                readable.add(path.relative_to(root).as_posix())
    if not listed:
        with pytest.raises(DataError, match="no images under"):
            FolderSegDataset(str(root), img_suffix=None)
        return
    ds = FolderSegDataset(str(root), img_suffix=None, short_side=None)
    assert sorted(ds.files) == sorted(listed)
    if not readable:
        with pytest.raises(DataError):
            SkipCorrupt(ds, "predict", prescan=True)
        return
    kept = SkipCorrupt(ds, "predict", prescan=True)
    assert len(kept) == len(readable)
    assert sorted(kept[i]["meta"]["path"] for i in range(len(kept))) == sorted(str(root / r) for r in readable)
    for i in range(len(kept)):
        assert kept[i]["image"].shape[-2:] == (16, 24) and np.isfinite(kept[i]["image"].numpy()).all()
