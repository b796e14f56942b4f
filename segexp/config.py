"""Config schemas and validation: every mistake fails before data or models are built.

Three layers, each with a clear message:
  1. Hydra itself: unknown group options and unknown keys (struct mode).
  2. Structured schemas in the ConfigStore (each `attention` option is its spec dataclass: AttentionSpec,
     ResCLIPSpec or SCCLIPSpec): wrong types and bad enum values fail while composing.
  3. `validate(cfg)`: every `_target_` node is checked against the signature and type hints of what it
     builds (unknown keys, wrong types), then the classes' own `check_config` hooks run (attention layers
     within the model's depth, ranges, dataset roots).
"""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from segexp import protocols
from segexp.attention.method_specs import SCHEMAS, spec_from_config
from segexp.constraints import Range
from segexp.errors import ConfigError

def _schema(spec_cls: type, target: str) -> type:
    """The Hydra schema of an `attention` option: the spec dataclass's fields plus its `_target_`."""
    hints = typing.get_type_hints(spec_cls)
    return dataclasses.make_dataclass(
        f"{spec_cls.__name__.removesuffix('Spec')}Schema",
        [("_target_", str, dataclasses.field(default=target))]
        + [(f.name, hints[f.name], dataclasses.field(default=f.default) if f.default is not dataclasses.MISSING
            else dataclasses.field(default_factory=f.default_factory)) for f in dataclasses.fields(spec_cls)],
        namespace={"__module__": __name__},
    )


#: `conf/attention/*.yaml` name their schema: /schema/attention@_here_: base | resclip | scclip
ATTENTION_SCHEMAS = {name: _schema(cls, f"segexp.attention.{cls.__name__}") for name, cls in SCHEMAS.items()}
AttentionSchema = ATTENTION_SCHEMAS["base"]


def register_schemas() -> None:
    for name, node in ATTENTION_SCHEMAS.items():
        ConfigStore.instance().store(group="schema/attention", name=name, node=node)


register_schemas()
protocols.register()  # ${protocol:key} in the configs

STAGES = (None, "fit", "validate", "test", "predict")
#: Trainer kwargs whose range Lightning checks only once the data and the model are built
TRAINER_RANGES = {"max_epochs": Range(ge=-1), "max_steps": Range(ge=-1), "min_epochs": Range(ge=0),
                  "accumulate_grad_batches": Range(ge=1), "log_every_n_steps": Range(ge=1)}


# --------------------------------------------------------------------------------------------------------
# signature-driven type checks
# --------------------------------------------------------------------------------------------------------
def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _describe(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _describe(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _range_violation(value: Any, tp) -> str | None:
    """What `value` must be to satisfy the `Range`s of an `Annotated[...]` hint (also inside Optional), or None."""
    if typing.get_origin(tp) is typing.Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, Range) and (why := meta.violation(value)):
                return why
    elif typing.get_origin(tp) in (typing.Union, types.UnionType) and value is not None:
        for arg in typing.get_args(tp):
            if (why := _range_violation(value, arg)):
                return why
    return None


def _matches(value: Any, tp) -> bool:
    """Does a (resolved, primitive) config value fit annotation `tp`? Unknown annotations pass."""
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _matches(value, args[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_matches(value, a) for a in args)
    if value is None or tp is type(None):  # None fits only NoneType and Optional[...] (the Union case above)
        return value is None and tp is type(None)
    if origin is typing.Literal:
        return value in args
    if isinstance(value, (DictConfig, Mapping)) and (value.get("_target_") if hasattr(value, "get") else None):
        return True  # a node that builds an object: checked on its own
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return isinstance(value, tp) or value in [m.value for m in tp] or value in tp.__members__
    if origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple, ListConfig)):
            return False
        inner = args[0] if args else None  # list[int], Sequence[int], tuple[int, ...]
        return inner is None or all(_matches(v, inner) for v in value)
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict,):
        return isinstance(value, (dict, DictConfig, Mapping))
    return True


def _signature(target: str):
    obj = get_object(target)
    fn = obj.__init__ if inspect.isclass(obj) else obj
    sig = inspect.signature(obj)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
    return obj, sig, hints


def check_targets(node: Any, path: str) -> None:
    """Recursively check `_target_` nodes against what they build."""
    if isinstance(node, (DictConfig, dict)):
        target = node.get("_target_")
        if target:
            try:
                obj, sig, hints = _signature(target)
            except Exception as e:
                raise ConfigError(f"{path}._target_={target} cannot be imported ({type(e).__name__}: {e}).") from None
            params = sig.parameters
            var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
            for key in node:
                if str(key).startswith("_"):
                    continue
                if key not in params and not var_kw:
                    allowed = ", ".join(k for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
                    raise ConfigError(f"{path}.{key} is not a parameter of {target} (allowed: {allowed}).")
                value = node[key]
                tp = hints.get(key, params[key].annotation if key in params else inspect.Parameter.empty)
                if value is None and not _matches(None, tp):
                    hint = " (loss=none is for training-free methods)" if key == "loss" else ""
                    raise ConfigError(f"{path}.{key} is null, but {target} needs {_describe(tp)}{hint}.")
                if not _matches(value, tp):
                    raise ConfigError(
                        f"{path}.{key}={OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value!r} "
                        f"has the wrong type: {target} expects {_describe(tp)}."
                    )
                if (why := _range_violation(value, tp)):
                    raise ConfigError(f"{path}.{key}={value!r} is out of range: {target} needs {why}.")
        for key in node:
            if not str(key).startswith("_"):
                check_targets(node[key], f"{path}.{key}")
    elif isinstance(node, (ListConfig, list)):
        for i, v in enumerate(node):
            check_targets(v, f"{path}[{i}]")


# --------------------------------------------------------------------------------------------------------
# the entry point's validation
# --------------------------------------------------------------------------------------------------------
def validate(cfg: DictConfig) -> None:
    """Raise ConfigError (one paragraph) for anything that would fail later."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:
        raise ConfigError(f"the config does not resolve: {e}") from None
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed={seed!r} must be an integer in [0, 2**32) (torch, numpy and random are seeded with it).")
    for key, rng in TRAINER_RANGES.items():
        value = (cfg.get("trainer") or {}).get(key)
        if value is not None and (why := rng.violation(value)):
            no_limit = " (-1: no limit)" if rng.ge == -1 else ""
            raise ConfigError(f"trainer.{key}={value!r} is out of range: Lightning needs {why}{no_limit}.")
    if cfg.get("stage") not in STAGES:
        raise ConfigError(f"stage={cfg.stage!r} is not one of fit, validate, test, predict (or null for fit then test).")
    if cfg.get("attention") is not None:
        try:
            spec_from_config(OmegaConf.to_container(cfg.attention, resolve=True))
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e) + ".") from None
    # the data hook first: a model paired with data it cannot read (wrong view, no root) is the real mistake,
    # which a type check of a value the model derives from the data would otherwise hide
    _run_hook(cfg, "data")
    for group in ("model", "data", "loss", "trainer"):
        if cfg.get(group) is not None:
            check_targets(cfg[group], group)
    _run_hook(cfg, "model")


def _run_hook(cfg: DictConfig, group: str) -> None:
    """The built class's own `check_config(node, cfg)`, if it has one."""
    node = cfg.get(group)
    if node is None or not node.get("_target_"):
        return
    hook = getattr(get_object(node._target_), "check_config", None)
    if callable(hook):
        hook(node, cfg)


def check_root(root: str | None, dataset_target: str, layout: str) -> None:
    """Shared by datamodules: a dataset that reads files needs an existing root."""
    if root in (None, "", "???") or not Path(str(root)).expanduser().exists():
        what = " is not set" if root in (None, "", "???") else f"={root!r} does not exist"
        raise ConfigError(
            f"data.root{what}: {dataset_target} reads files from disk. "
            f"Expected layout: {layout}. Pass data.root=/path/to/dataset."
        )


def compose_config(overrides: Sequence[str] = (), output_dir: str | Path = "outputs/notebook") -> DictConfig:
    """Compose the config exactly as `python -m segexp.run OVERRIDES` would, outside a Hydra app
    (notebooks, tests, benchmarks); `${hydra:...}` interpolations resolve, with outputs in `output_dir`."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    GlobalHydra.instance().clear()
    with initialize_config_module("segexp.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg
