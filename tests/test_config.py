"""Every group option composes with every model; bad overrides fail early with one clear paragraph."""
import pytest
from omegaconf import OmegaConf

from segexp.config import validate
from segexp.errors import ConfigError
from tests.conftest import ROOT, compose_cfg

CONF = ROOT / "conf"
GROUPS = ["attention", "loss", "data", "trainer", "logger", "callbacks"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


MODELS = options("model")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_with_every_model(model, group, tmp_path):
    for opt in options(group):
        cfg = compose_cfg([f"model={model}", f"{group}={opt}"], tmp_path)
        OmegaConf.to_container(cfg, resolve=True)
        try:
            validate(cfg)
        except ConfigError as e:  # an incompatible pair must say so clearly, e.g. a dataset root to set
            assert len(str(e)) > 20


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_preset_composes(experiment, tmp_path):
    cfg = compose_cfg([f"experiment={experiment}"], tmp_path)
    OmegaConf.to_container(cfg, resolve=True)


def test_defaults_validate_and_model_brings_its_data_and_loss(tmp_path):
    cfg = compose_cfg(["model=uninext"], tmp_path)
    validate(cfg)
    assert cfg.data.view == "regions" and cfg.loss.align_weight == 0.05
    assert cfg.model.attention.strategy.value == "vanilla" and list(cfg.model.attention.layers) == []


def test_schema_rejects_wrong_type_and_enum_at_compose(tmp_path):
    with pytest.raises(Exception, match="std"):
        compose_cfg(["attention.std=abc"], tmp_path)
    with pytest.raises(Exception, match="neighbor"):
        compose_cfg(["attention=neighbour", "attention.strategy=neighbor"], tmp_path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["attention.std=-1"], "attention.std must be > 0"),
        (["attention=neighbour", "attention.layers=[10,12]"], "outside the model's 12 blocks"),
        (["data.batch_size=abc"], "data.batch_size='abc' has the wrong type"),
        (["model.net.pool_threshold=high"], "model.net.pool_threshold='high' has the wrong type"),
        (["data=coco_regions"], "data.root is not set"),
        (["data=coco_regions", "data.root=/nonexistent/coco"], "data.root='/nonexistent/coco' does not exist"),
        (["stage=train"], "stage='train' is not one of"),
        (["model=naclip", "stage=fit"], "NAClipModule is training-free"),
    ],
)
def test_validation_messages(overrides, message, tmp_path):
    cfg = compose_cfg(overrides, tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value)


def test_packages_listed_in_pyproject_cover_every_package_folder():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"segexp." + ".".join(p.parent.relative_to(ROOT / "segexp").parts) if p.parent != ROOT / "segexp" else "segexp"
             for p in (ROOT / "segexp").rglob("__init__.py")}
    assert found | {"segexp.conf"} == listed
