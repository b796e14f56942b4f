"""`python -m segexp.run` / `segexp`: compose → validate → instantiate → fit / validate / test / predict.

Returns the monitored metric so sweepers can optimise it.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

import segexp.config  # noqa: F401  (registers the config schemas before Hydra composes)
from segexp import checkpoint
from segexp.errors import ConfigError, NonFiniteLossError

log = logging.getLogger("segexp")


def _fail(kind: str, message: str, code: int) -> None:
    print(f"segexp: {kind}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def build_callbacks(cfg: DictConfig, has_logger: bool) -> list:
    from hydra.utils import instantiate

    out = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        if not has_logger and node.get("_target_", "").endswith("LearningRateMonitor"):
            log.info("callbacks.%s skipped: it needs a logger (logger=none)", name)
            continue
        out.append(instantiate(node))
    return out


def save_resolved_config(cfg: DictConfig, output_dir: Path, loggers: list) -> dict:
    """Write `config.yaml` (resolved) into the run dir and send it to every logger."""
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(resolved), output_dir / "config.yaml")
    for lg in loggers:
        lg.log_hyperparams(resolved)
    return resolved


def execute(cfg: DictConfig) -> float | None:
    import lightning as L
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, _convert_="partial")
    resume_wandb_run(cfg, output_dir)
    loggers = [instantiate(node) for node in (cfg.get("logger") or {}).values() if node is not None]
    callbacks = build_callbacks(cfg, bool(loggers))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    model.run_config = save_resolved_config(cfg, output_dir, loggers)
    log.info("trainer: %s, world size %d", type(trainer.strategy).__name__, trainer.world_size)

    stage = cfg.get("stage")
    if stage is None and getattr(model, "training_free", False):
        stage = "test"
    ckpt = checkpoint.find(cfg, output_dir)
    if ckpt is not None:
        checkpoint.check_method(ckpt, checkpoint.read_meta(ckpt), model)
    if stage in (None, "fit"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt)
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
        ckpt = best or None
    if stage in (None, "test"):
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt)
    if stage == "validate":
        trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt)
    if stage == "predict":
        trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt, return_predictions=False)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if trainer.is_global_zero:
        for k in sorted(metrics):
            log.info("%s = %.4f", k, metrics[k])
        log.info("run dir: %s", output_dir)
    monitor = cfg.get("monitor")
    test_key = monitor.replace("val/", "test/", 1) if monitor else None
    return metrics.get(monitor, metrics.get(test_key)) if monitor else None


def resume_wandb_run(cfg: DictConfig, output_dir: Path) -> None:
    """On `resume=true` / `ckpt_path=last`, log into the run dir's existing W&B run (same id) instead of a new one."""
    node = (cfg.get("logger") or {}).get("wandb")
    resuming = cfg.get("resume") or cfg.get("ckpt_path") == "last"
    if node is None or not resuming or node.get("id"):
        return
    runs = sorted((output_dir / "wandb").glob("*run-*-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return
    run_id = runs[-1].name.rsplit("-", 1)[-1]
    log.info("resuming W&B run %s (from %s)", run_id, runs[-1])
    with open_dict(cfg):
        node.id = run_id
        node.resume = "allow"


def _finish_wandb() -> None:
    """Close the W&B run so the next job of a multirun gets its own (and say how to sync it)."""
    if "wandb" not in sys.modules:
        return
    import wandb

    run = wandb.run
    if run is None:
        return
    offline = run.settings.mode in ("offline", "dryrun") if hasattr(run.settings, "mode") else False
    run_dir = Path(run.dir).parent if run.dir else None
    wandb.finish()
    if offline and run_dir is not None:
        print(f"segexp: W&B offline run saved; upload it with:  wandb sync {run_dir}", flush=True)


def _config_paths_of(cfg: DictConfig, key: str, value) -> list[str]:
    """Dotted paths of `key` entries equal to `value` (to name the override in a message)."""
    found = []

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                path = f"{prefix}.{k}" if prefix else str(k)
                if k == key and v == value:
                    found.append(path)
                walk(v, path)

    walk(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), "")
    return found


def _without_worker_traceback(message: str) -> str:
    """A DataLoader worker re-raises its error with the worker's traceback in the message: keep the error."""
    if "Original Traceback" not in message:
        return message
    where = message.split("\n", 1)[0].removeprefix("Caught ").split(" in ", 1)[-1].rstrip(".")
    return f"{message.rstrip().rsplit('DataError: ', 1)[-1]} (raised in {where})"


def _known_error(exc: BaseException):
    """The segexp error behind an exception (Hydra wraps errors raised while instantiating)."""
    from segexp.data.datasets import DataError
    from segexp.weights import WeightsNotFoundError

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (ConfigError, WeightsNotFoundError, DataError, NonFiniteLossError)):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


#: strategies whose launcher re-executes the command line once per rank, and their in-job (spawn) twin
REEXEC_STRATEGIES = {"ddp": "ddp_spawn", "ddp_find_unused_parameters_true": "ddp_spawn_find_unused_parameters_true",
                     "fsdp": None}


def make_multirun_ddp_safe(cfg: DictConfig) -> None:
    """Inside a Hydra multirun, start a job's DDP ranks inside the job (spawn) instead of re-executing argv.

    Lightning's subprocess launcher re-executes argv: inside `-m` every child rank would run the whole sweep
    again, and a sampling sweeper would hand each rank different hyper-parameters, with no error
    (docs/ddp_and_hydra.md). `ddp` becomes `ddp_spawn`, whose ranks all receive this job's pickled
    config; `fsdp` has no spawn launcher and is refused. Ranks created outside (SLURM tasks via submitit,
    torchrun) are left alone.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # not under Hydra (notebooks, compose_config)
        return
    trainer = cfg.get("trainer") or {}
    strategy = str(trainer.get("strategy", "auto"))
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    many = (isinstance(devices, int) and devices > 1) or (isinstance(nodes, int) and nodes > 1) or devices in (-1, "auto")
    external = any(v in os.environ for v in ("SLURM_NTASKS", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"))
    if not (multirun and many and strategy in REEXEC_STRATEGIES and not external):
        return
    spawn = REEXEC_STRATEGIES[strategy]
    if spawn is None:
        raise ConfigError(
            f"trainer.strategy={strategy} with {devices} devices inside a Hydra multirun: Lightning would re-run the "
            f"whole sweep in every rank, and {strategy} has no spawn launcher. Use hydra/launcher=slurm_ddp (ranks "
            f"created by SLURM) on a cluster, or run the jobs one by one without -m.")
    log.warning("trainer.strategy=%s inside a multirun: using %s, so this job's ranks start inside the job with its "
                "own config (Lightning's ddp launcher would re-run the whole sweep in every rank)", strategy, spawn)
    with open_dict(cfg):
        cfg.trainer.strategy = spawn


def adopt_checkpoint_model(cfg: DictConfig) -> None:
    """validate / test / predict with a checkpoint: the model is the checkpoint's (segexp.checkpoint)."""
    from hydra.core.hydra_config import HydraConfig

    if cfg.get("stage") not in ("validate", "test", "predict"):
        return
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:  # not under Hydra (notebooks, compose_config without a run)
        return
    ckpt = checkpoint.find(cfg, Path(hydra_cfg.runtime.output_dir))
    if ckpt is None:
        return
    if checkpoint.adopt_model_config(cfg, ckpt, checkpoint.read_meta(ckpt), list(hydra_cfg.overrides.task)):
        log.info("model rebuilt from the config stored in %s", ckpt)


def run(cfg: DictConfig) -> float | None:
    from segexp.config import validate
    from segexp.data.datasets import DataError
    from segexp.weights import WeightsNotFoundError

    try:
        adopt_checkpoint_model(cfg)
        validate(cfg)
        make_multirun_ddp_safe(cfg)
    except ConfigError as e:
        _fail("config error", str(e), 2)
    try:
        return execute(cfg)
    except Exception as e:
        known = _known_error(e)
        if isinstance(known, ConfigError):
            _fail("config error", str(known), 2)
        if isinstance(known, WeightsNotFoundError):
            paths = [p for p in _config_paths_of(cfg, "pretrained", known.spec) if not p.startswith("hydra")]
            known.key = paths[0] if len(paths) == 1 else known.key
            _fail("missing weights", str(known), 3)
        if isinstance(known, DataError):
            _fail("data error", _without_worker_traceback(str(known)), 4)
        if isinstance(known, NonFiniteLossError):
            _fail("training stopped", str(known), 5)
        raise
    finally:
        _finish_wandb()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, like Ctrl-C.

    Lightning's own SIGTERM handler only sets a flag that its loops read between batches, so a long batch
    (a large image's sliding windows, a big random model on CPU) ran on for a minute. As a KeyboardInterrupt it
    takes Lightning's graceful-shutdown path: callbacks' on_exception, loggers finalised, and the last
    checkpoint left as it was (checkpoints are written atomically).
    """


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signal.Signals(signum).name)


@hydra.main(version_base="1.3", config_path="pkg://segexp.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    from segexp.logs import quiet

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet()
    return run(cfg)


def _stopped(signame: str) -> None:
    run_id = os.environ.get("SEGEXP_RUN_ID")
    resume = f"SEGEXP_RUN_ID={run_id} python -m segexp.run ... resume=true" if run_id else \
        "python -m segexp.run ... hydra.run.dir=<the run dir> resume=true"
    print(f"segexp: stopped by {signame}. Checkpoints already written are complete; continue with: {resume}",
          file=sys.stderr, flush=True)


def main() -> float | None:
    """The entry point: segexp's own `--help` first (Hydra's stays at --hydra-help), then Hydra."""
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        from segexp.usage import usage

        print(usage())
        return None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _hydra_main()
    except KeyboardInterrupt as e:  # outside Lightning (building the model, loading data)
        _stopped(str(e) or "Ctrl-C")
        raise SystemExit(143 if isinstance(e, Terminated) else 130) from None
    except SystemExit as e:
        # Lightning turns an interrupt into sys.exit(1) after its graceful shutdown: say so, with the signal's code
        interrupt = e.__context__
        if isinstance(interrupt, KeyboardInterrupt):
            _stopped(str(interrupt) or "Ctrl-C")
            raise SystemExit(143 if isinstance(interrupt, Terminated) else 130) from None
        raise


if __name__ == "__main__":
    main()
