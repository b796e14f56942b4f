"""Loading an official-code reference vector (`tests/reference/<method>/`, FORMAT.md beside each) and its CLIP.

An environment variable points a test at another file of the same format; the weight generator `make_weights.py`
must sit beside the file. The random CLIP is written to a checkpoint and loaded through `create_clip`, as a user's
weights would be.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).resolve().parent / "reference"


def vector_path(env: str, default: str) -> Path:
    return Path(os.environ.get(env) or REFERENCE / default)


def load_vector(path: Path, env: str) -> dict:
    if not path.is_file():  # only a wrong variable gets here: the defaults ship with the tests
        pytest.fail(f"reference vector not found: {path} ({env})", pytrace=False)
    if not (path.parent / "make_weights.py").is_file():
        pytest.fail(f"no make_weights.py beside {path}: the format keeps the weight generator next to the vector",
                    pytrace=False)
    return torch.load(path, weights_only=True)


_CLIPS: dict = {}


def clip_of(vec: dict, path: Path, tmp_dir: Path, clip_name: str = "ViT-B-16"):
    """The vector's random CLIP (meta weights_seed, fingerprint checked), loaded from a safetensors file; one per
    (generator, seed, architecture) in a test session (the ResCLIP and SC-CLIP vectors share seed 20). Tests
    deep-copy it before installing a method."""
    key = ((path.parent / "make_weights.py").read_bytes(), vec["meta"]["weights_seed"], clip_name)
    if key not in _CLIPS:
        _CLIPS[key] = _load_clip(vec, path, tmp_dir, clip_name)
    return _CLIPS[key]


def _load_clip(vec: dict, path: Path, tmp_dir: Path, clip_name: str):
    from safetensors.torch import save_file

    from segexp.models.clip import create_clip

    spec = importlib.util.spec_from_file_location("make_weights", path.parent / "make_weights.py")
    mw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mw)
    meta = vec["meta"]
    sd = mw.make_state_dict(meta["weights_seed"])
    assert mw.fingerprint(sd) == meta["weights_fingerprint_sha256"]
    file = tmp_dir / f"clip_seed{meta['weights_seed']}.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(file))  # fp16 on disk, exact in fp32
    return create_clip(clip_name, str(file))


def tolerance(meta: dict, name: str) -> float:
    """The file's threshold for item `name` (its key in meta['tolerances'] is `<name>_<metric>`)."""
    return next(v for k, v in meta["tolerances"].items() if k.startswith(name + "_"))


class Failures(list):
    """Every comparison of a test, collected, so that one run names every mismatching item (not only the first)."""

    def rel(self, name: str, out: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
        if out.shape != ref.shape:
            self.append(f"{name}: shape {tuple(out.shape)} != {tuple(ref.shape)}")
        elif (e := rel_err(out, ref)) > tol:
            self.append(f"{name}: max rel {e:.2e} > {tol:g}")

    def abs(self, name: str, out: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
        if out.shape != ref.shape:
            self.append(f"{name}: shape {tuple(out.shape)} != {tuple(ref.shape)}")
        elif (e := abs_err(out, ref)) > tol:
            self.append(f"{name}: max abs {e:.2e} > {tol:g}")

    def agree(self, name: str, out: torch.Tensor, ref: torch.Tensor, at_least: float) -> None:
        if (a := agreement(out.reshape(ref.shape), ref)) < at_least:
            self.append(f"{name}: {a:.5f} equal < {at_least:g}")


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    """max|a − ref| / max|ref|."""
    ref = ref.float()
    return ((a.float() - ref).abs().max() / ref.abs().max()).item()


def abs_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return (a.float() - ref.float()).abs().max().item()


def agreement(a: torch.Tensor, ref: torch.Tensor) -> float:
    return (a.long() == ref.long()).float().mean().item()
