"""Evaluation protocols: everything outside the model that changes a training-free method's numbers.

A protocol (`conf/protocol/<name>.yaml`, package `protocol`) holds a `default` block with every setting and a
`benchmarks` block of per-dataset exceptions, keyed by the data config's `dataset.name` (voc21, context60, ...).
Configs read a setting with the `protocol` resolver, which picks the benchmark's value when it has one:

    model.segmenter.logit_scale: ${protocol:logit_scale}
    data.dataset.short_side: ${protocol:short_side}

so `protocol=sclip data=voc21` gives SCLIP's VOC21 numbers, and any single key stays one override away
(`model.segmenter.logit_scale=50` beats the protocol). `${protocol_class_file:voc21.txt}` picks the protocol's
variant of a packaged class-name file (`class_names/<protocol.class_names>/voc21.txt`) when it exists.
Registered when `segexp.config` is imported (before Hydra composes).
"""
from __future__ import annotations

from importlib.resources import files
from typing import Any

from omegaconf import DictConfig, OmegaConf

def benchmark_of(root: DictConfig) -> str | None:
    return OmegaConf.select(root, "data.dataset.name", default=None)


def _value(value: Any) -> Any:
    """A list or mapping goes back to OmegaConf as a config node: `--cfg job --resolve` (OmegaConf.resolve) cannot
    put a plain list into a value node."""
    if OmegaConf.is_config(value):
        return value
    return OmegaConf.create(value) if isinstance(value, (list, tuple, dict)) else value


def setting(key: str, *, _root_: DictConfig) -> Any:
    """`${protocol:key}`: the protocol's value of `key` for this config's benchmark (else its default)."""
    proto = _root_.get("protocol")
    if proto is None:
        raise KeyError(f"${{protocol:{key}}} needs a protocol group (protocol=naclip|sclip|clearclip|maskclip)")
    if key not in proto.default:
        raise KeyError(f"protocol={proto.get('name')} has no setting '{key}' (settings: {', '.join(proto.default)})")
    bench = (proto.get("benchmarks") or {}).get(benchmark_of(_root_) or "", None) or {}
    return _value(bench[key] if key in bench else proto.default[key])


def tuned(key: str, fallback: Any = None, *, _root_: DictConfig) -> Any:
    """`${protocol_tuned:key,fallback}`: a method's hyper-parameter as its official protocol tunes it per benchmark.

    A protocol may carry a `tuned` block (`default` + `benchmarks`, like its settings) with a method's own values
    (protocol=resclip: temp_thd and the RCS / SFR weights of each of its configs); under a protocol without the key
    the method keeps `fallback`. An override of the method's key still wins."""
    proto = _root_.get("protocol")
    block = (proto.get("tuned") if proto is not None else None) or {}
    bench = (block.get("benchmarks") or {}).get(benchmark_of(_root_) or "", None) or {}
    default = block.get("default") or {}
    return _value(bench[key] if key in bench else default[key] if key in default else fallback)


def class_file(name: str, *, _root_: DictConfig) -> str:
    """`${protocol_class_file:voc21.txt}`: `<variant>/voc21.txt` when the protocol's class-name variant has it."""
    variant = setting("class_names", _root_=_root_)
    if variant and files("segexp.data").joinpath("class_names", str(variant), name).is_file():
        return f"{variant}/{name}"
    return name


def register() -> None:
    for name, fn in (("protocol", setting), ("protocol_tuned", tuned), ("protocol_class_file", class_file)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
