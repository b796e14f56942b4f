"""Which checkpoint a run uses, what it records, and rebuilding a model from it alone.

Every segexp checkpoint records the method that wrote it and the run's resolved config (`SegexpModule.
on_save_checkpoint`). `stage=validate|test|predict ckpt_path=FILE` rebuilds the model from that config, so a
user does not repeat the training overrides; an override on the command line that contradicts it is refused.
"""
from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from segexp.errors import ConfigError

#: the config groups a checkpoint's model is made of (model interpolates loss and attention)
MODEL_GROUPS = ("model", "loss", "attention")


def find(cfg: DictConfig, output_dir: Path) -> str | None:
    """`ckpt_path` (a file, `last`, `best`, or `resume=true` = `last`, both in this run dir) → a checkpoint file."""
    ckpt = cfg.get("ckpt_path")
    if cfg.get("resume") and not ckpt:
        ckpt = "last"
    if ckpt == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise ConfigError(f"resume: no checkpoints/last.ckpt in the run dir {output_dir}. Resume in the run's own "
                              f"directory: the same SEGEXP_RUN_ID, or hydra.run.dir=<run dir> (or pass ckpt_path=<file>).")
        ckpt = str(last)
    elif ckpt == "best":  # Lightning's "best" needs the fit's own callback; a later run finds the file instead
        found = sorted((output_dir / "checkpoints").glob("best-*.ckpt"))
        if len(found) != 1:
            raise ConfigError(f"ckpt_path=best: {len(found)} best-*.ckpt files in {output_dir / 'checkpoints'} "
                              f"({', '.join(p.name for p in found) or 'none'}); run in the fit's run dir (the same "
                              f"SEGEXP_RUN_ID or hydra.run.dir) or pass ckpt_path=<file>.")
        ckpt = str(found[0])
    if ckpt is None:
        return None
    if not Path(ckpt).is_file():
        raise ConfigError(f"ckpt_path={ckpt}: no such file.")
    return str(ckpt)


def read_meta(path: str) -> dict:
    """The checkpoint's `segexp` record ({} for a checkpoint without one), read weights-only (once per file version)."""
    stat = Path(path).stat()
    return _read_meta(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_meta(path: str, mtime_ns: int, size: int) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("segexp") or {}
    except Exception as e:  # not a checkpoint, truncated, or pickled objects
        raise ConfigError(f"ckpt_path={path} cannot be read as a weights-only checkpoint ({type(e).__name__}); "
                          f"segexp never unpickles code.") from None


def _short(target: str) -> str:
    return str(target).rsplit(".", 1)[-1]


def check_method(path: str, meta: dict, model) -> None:
    method = f"{type(model).__module__}.{type(model).__qualname__}"
    if meta.get("method") and meta["method"] != method:
        raise ConfigError(f"ckpt_path={path} was written by {_short(meta['method'])}, but this run builds "
                          f"{_short(method)}: pick the matching model= option.")


def adopt_model_config(cfg: DictConfig, path: str, meta: dict, overrides: list[str]) -> bool:
    """Replace `cfg`'s model groups by the checkpoint's (evaluation / prediction). Command-line overrides of them
    must agree with the checkpoint: a contradiction names the key and both values. Returns whether it adopted."""
    stored = (meta.get("config") or {})
    if not stored.get("model"):
        return False
    stored = OmegaConf.create({g: stored.get(g) for g in MODEL_GROUPS})
    given = _overridden_keys(overrides)
    if "model" in given and cfg.model.get("_target_") != stored.model.get("_target_"):
        raise ConfigError(f"ckpt_path={path} holds a {_short(stored.model._target_)} model, but model={given['model']} "
                          f"builds {_short(cfg.model.get('_target_'))}: drop model= (the checkpoint knows its model).")
    for key in given:
        if key.split(".")[0] not in MODEL_GROUPS or "." not in key:
            continue
        ours = OmegaConf.select(cfg, key, default="<absent>")
        theirs = OmegaConf.select(stored, key, default="<absent>")
        ours, theirs = (OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for v in (ours, theirs))
        if ours != theirs:
            raise ConfigError(f"{key}={ours!r} contradicts the checkpoint {path}, which was trained with {key}={theirs!r}; "
                              f"drop the override (the model is rebuilt from the checkpoint's own config).")
    view = ((meta.get("config") or {}).get("data") or {}).get("view")
    with open_dict(cfg):
        for group in MODEL_GROUPS:
            cfg[group] = stored.get(group)
        # a model option sets the view it reads (data.view); without model= on the command line that was the
        # default model's, so the checkpoint's model brings its own unless data.view was given
        if view and cfg.get("data") is not None and "data.view" not in given and "view" in cfg.data:
            cfg.data.view = view
    return True


def _overridden_keys(overrides: list[str]) -> dict[str, str]:
    """{key or group: value text} of command-line overrides (`+`, `++` and `~` prefixes dropped)."""
    out = {}
    for o in overrides:
        if "=" not in o:
            continue
        key, value = o.split("=", 1)
        out[key.lstrip("+~")] = value
    return out
