"""The wheel ships every package folder and every data folder (configs, model configs, class names)."""
import tomllib
from pathlib import Path

from tests.conftest import ROOT

DATA_SUFFIXES = {".py", ".yaml", ".json", ".txt"}


def _folders_with_files(top: Path, package: str) -> set[str]:
    found = set()
    for path in top.rglob("*"):
        if path.is_file() and path.suffix in DATA_SUFFIXES and "__pycache__" not in path.parts:
            rel = path.parent.relative_to(top)
            found.add(".".join([package, *rel.parts]))
    return found


def test_every_package_and_data_folder_is_listed():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    expected = _folders_with_files(ROOT / "segexp", "segexp") | _folders_with_files(ROOT / "conf", "segexp.conf")
    assert expected - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - expected == set(), "these listed packages have no files"
    assert setup["package-dir"] == {"": "."}
    link = ROOT / "segexp" / "conf"
    assert link.is_symlink() and link.resolve() == (ROOT / "conf").resolve(), "segexp/conf must link to conf/"


def test_shipped_reference_files_are_byte_identical_to_the_official_outputs():
    import hashlib

    for sums in (ROOT / "tests" / "reference").rglob("SHA256SUMS"):
        for line in sums.read_text().splitlines():
            digest, name = line.split(maxsplit=1)
            assert hashlib.sha256((sums.parent / name).read_bytes()).hexdigest() == digest, f"{sums.parent / name} was modified"
