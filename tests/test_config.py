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


TRAINED = {"uninext", "distill", "t2i_reid", "clip_pretrain"}
PERSON_DATA = {"synthetic_persons", "cuhk_pedes", "icfg_pedes", "rstpreid"}
INSTANCE_DATA = {"synthetic_shapes", "synthetic_colours", "coco_regions", "synthetic_captions"}
OPEN_VOCAB = {"naclip", "sam3"}
DENSE_METHODS = {"resclip", "scclip"}  # attention options that only NACLIPSegmenter runs
PER_BLOCK_ATTENTION = {"uninext", "distill", "sam3"}  # models that install the attention group on a ViT of theirs
SYNTHETIC = {"synthetic_shapes", "synthetic_colours", "synthetic_persons", "synthetic_captions"}


def expected_error(model: str, group: str, option: str) -> str | None:
    """The message a model/option pair must fail with, or None when it must validate."""
    if group == "attention" and option in DENSE_METHODS and model in PER_BLOCK_ATTENTION:
        return "is a dense-feature method.*model=naclip"
    if group == "loss" and option == "none" and model in TRAINED:
        return "model.loss is null.*training-free"
    if group != "data":
        return None
    if model == "uninext" and option not in INSTANCE_DATA:
        return "data.view=regions needs instance annotations"
    if model == "t2i_reid" and option not in PERSON_DATA:
        return "data.view=persons needs person identities"
    if model in OPEN_VOCAB and option == "synthetic_persons":  # ReID people: no class vocabulary to segment
        return "segments by words, and this data config names no classes"
    if option not in SYNTHETIC:  # every other dataset reads files under data.root
        return "data.root is not set"
    return None


def _check_group_with_model(model: str, group: str, tmp_path) -> None:
    for opt in options(group):
        if (model, group, opt) == ("sam3", "attention", "scclip"):  # sam3.yaml sets attention.arch, which SC-CLIP lacks
            with pytest.raises(Exception, match="Key 'arch' not in 'SCCLIPSchema'"):
                compose_cfg([f"model={model}", f"{group}={opt}"], tmp_path)
            continue
        cfg = compose_cfg([f"model={model}", f"{group}={opt}"], tmp_path)
        OmegaConf.to_container(cfg, resolve=True)
        message = expected_error(model, group, opt)
        if message is None:
            validate(cfg)  # a valid combination that starts failing is a regression
        else:
            with pytest.raises(ConfigError, match=message):
                validate(cfg)


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_with_the_default_model(group, tmp_path):
    _check_group_with_model("uninext", group, tmp_path)


@pytest.mark.slow  # ~300 Hydra composes: the cross product belongs to the full suite
@pytest.mark.parametrize("model", [m for m in MODELS if m != "uninext"])
@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_with_every_model(model, group, tmp_path):
    _check_group_with_model(model, group, tmp_path)


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
