"""Never losing a run: resume in the same run dir, checkpoints of another method refused, non-finite losses
stopped, truncated caches rebuilt, fuzzed overrides answered by a clean error."""
import math
from types import SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, ListConfig

from segexp.callbacks import FiniteLossGuard
from segexp.errors import ConfigError, NonFiniteLossError
from segexp.models.feature_cache import FeatureCache
from tests.conftest import TINY, compose_cfg, run_dirs

FAST = ["model=uninext", *TINY["uninext"], "callbacks.visualiser=null", "callbacks.metrics_plot=null"]


# resume=true after a kill (same run dir, weights, metrics and W&B run): tests/test_distributed.py


@pytest.mark.slow
def test_resume_without_a_last_checkpoint_says_how(cli):
    r = cli([*FAST, "resume=true"], env={"SEGEXP_RUN_ID": "fresh"}, timeout=300)
    assert r.returncode == 2 and "SEGEXP_RUN_ID" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_checkpoint_of_another_method_is_refused(cli, tmp_path):
    path = tmp_path / "reid.ckpt"
    torch.save({"segexp": {"method": "segexp.methods.reid.ReIDModule"}, "state_dict": {}}, path)
    r = cli([*FAST, "stage=test", f"ckpt_path={path}"], timeout=300)
    assert r.returncode == 2 and "written by ReIDModule" in r.stderr and "AlphaClipAlignModule" in r.stderr


def test_non_finite_loss_stops_with_the_last_good_checkpoint_named():
    guard = FiniteLossGuard()
    trainer = SimpleNamespace(global_step=7, current_epoch=1, checkpoint_callback=SimpleNamespace(last_model_path="/run/last.ckpt"))
    guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5)}, None, 3)  # finite: nothing happens
    with pytest.raises(NonFiniteLossError, match=r"nan at step 7.*Last good checkpoint: /run/last.ckpt"):
        guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(float("nan"))}, None, 3)


def test_truncated_cache_is_rebuilt_not_used(tmp_path):
    path = tmp_path / "teacher.safetensors"
    cache = FeatureCache(path, "fp1")
    cache.put(["a", "b"], torch.randn(2, 8))
    cache.flush()
    assert len(FeatureCache(path, "fp1")) == 2
    assert len(FeatureCache(path, "other-teacher")) == 0  # stale fingerprint
    path.write_bytes(path.read_bytes()[:-20])  # a write cut short
    rebuilt = FeatureCache(path, "fp1")
    assert len(rebuilt) == 0
    rebuilt.put(["a"], torch.ones(1, 8))
    rebuilt.flush()
    assert torch.equal(FeatureCache(path, "fp1").get(["a"]), torch.ones(1, 8))


KEYS = ["attention.std", "attention.layers", "data.batch_size", "loss.align_weight", "model.optim.head_lr",
        "trainer.max_epochs", "data.view", "attention.strategy", "seed"]
VALUES = st.one_of(st.integers(-5, 50), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
    ["abc", "[1,2]", "[99]", "null", "neighbor", "''", "[", "{a: 1}", "-1e9", "true"]))


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: what validation must accept, written from the keys' meaning (the default model is a 12-block uninext)
ACCEPTS = {
    "attention.std": lambda v: _finite(v) and v > 0,
    "attention.layers": lambda v: v is None or (isinstance(v, list) and all(_int(i) and -12 <= i < 12 for i in v)),
    "data.batch_size": lambda v: _int(v) and v > 0,
    "loss.align_weight": lambda v: _finite(v) and v >= 0,
    "model.optim.head_lr": lambda v: _finite(v) and v >= 0,
    "trainer.max_epochs": lambda v: v is None or (_int(v) and v >= -1),
    "seed": lambda v: _int(v) and 0 <= v < 2**32,
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_fuzzed_overrides_are_accepted_exactly_when_valid_and_refused_naming_the_key(key, value, tmp_path):
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from segexp.config import validate

    try:
        cfg = compose_cfg([f"{key}={value}"], tmp_path)
    except OverrideParseException as e:  # not an override at all: Hydra quotes the grammar error
        assert "no viable alternative" in str(e) or "mismatched input" in str(e) or "token recognition" in str(e), str(e)
        return
    except (HydraException, OmegaConfBaseException) as e:  # Hydra's own one-message errors (no traceback in the CLI)
        assert key in str(e), str(e)
        return
    parsed = OmegaConf.to_container(OmegaConf.select(cfg, key, throw_on_missing=False)) \
        if isinstance(OmegaConf.select(cfg, key), (ListConfig, DictConfig)) else OmegaConf.select(cfg, key)
    try:
        validate(cfg)
        accepted = True
    except ConfigError as e:
        accepted = False
        assert key.rsplit(".", 1)[-1] in str(e) and "\n" not in str(e), str(e)
    if key in ACCEPTS:
        assert accepted == ACCEPTS[key](parsed), f"{key}={value!r} (parsed {parsed!r}): accepted={accepted}"


@pytest.mark.slow
def test_fsdp_inside_a_multirun_is_refused(cli):
    # ddp is switched to ddp_spawn (tests/test_distributed.py); fsdp has no spawn launcher
    r = cli(["-m", "seed=0,1", "trainer=fsdp", *FAST], timeout=300)
    assert r.returncode == 2 and "re-run the whole sweep in every rank" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("launcher, needle", [("slurm_ddp", "SlurmLauncher"), ("submitit_slurm", "SlurmLauncher"),
                                              ("joblib", "JoblibLauncher")])
def test_launcher_presets_compose(launcher, needle, cli):
    r = cli([f"hydra/launcher={launcher}", "trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2", "--cfg", "hydra"],
            timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert needle in r.stdout
    if launcher == "slurm_ddp":
        assert "tasks_per_node: ${trainer.devices}" in r.stdout and "nodes: ${trainer.num_nodes}" in r.stdout
