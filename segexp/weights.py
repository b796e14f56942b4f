"""Resolve and load pretrained weights without ever running pickled code or hitting a hub offline.

A `pretrained` value is one of
  * ``None`` / ``"none"``: random init (logged loudly);
  * an open_clip pretrained tag for the model name (``"openai"``, ``"laion2b_s34b_b88k"``...), found
    in the local caches (``~/.cache/clip``, ``$SEGEXP_WEIGHTS_DIR``, the HF hub cache); downloading is
    opt-in (``allow_download=True``) so an offline run never reaches a hub client;
  * a local ``.pt`` / ``.pth`` / ``.bin`` / ``.safetensors`` file in OpenAI, open_clip, timm or
    Alpha-CLIP key layout;
  * a local Hugging Face folder (loaded with ``local_files_only``).

Missing weights raise `WeightsNotFoundError`, whose message says what to download, where to put it and
which override points at it.
"""
from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


class WeightsNotFoundError(FileNotFoundError):
    """Raised with a human-readable download instruction; run.py prints it without a traceback.

    The message names the override as `{key}`; `key` defaults to the caller's `override` argument and the
    entry point replaces it with the config path that holds the failing value (`model.net.pretrained`...).
    """

    def __init__(self, template: str, spec=None, key: str = "pretrained"):
        super().__init__(template)
        self.template, self.spec, self.key = template, spec, key

    def __str__(self) -> str:
        return self.template.replace("{key}", self.key)


def weights_dir() -> Path:
    return Path(os.environ.get("SEGEXP_WEIGHTS_DIR", Path.home() / ".cache" / "segexp" / "weights"))


def is_random(pretrained) -> bool:
    return pretrained is None or str(pretrained).lower() in ("", "none", "null", "random")


#: from this many parameters a random model is announced with a banner: such a model is meant to be pretrained
LARGE_MODEL_PARAMS = 30_000_000
_announced: set[str] = set()


def warn_random(what: str, module: torch.nn.Module | None = None) -> None:
    """Say once per process that `what` has random weights: a banner for a large model, a line for a demo one."""
    if what in _announced:
        return
    _announced.add(what)
    n = sum(p.numel() for p in module.parameters()) if module is not None else None
    if n is not None and n < LARGE_MODEL_PARAMS:
        log.info("%s: random weights (%.1f M parameters, a demo-size model)", what, n / 1e6)
        return
    bar = "!" * 78
    size = f" ({n / 1e6:.0f} M parameters)" if n is not None else ""
    log.warning("%s\n%s%s is RANDOMLY INITIALISED (pretrained=null): its numbers mean nothing.\n"
                "Give it weights with its `pretrained=` key (see the README, \"Weights\").\n%s", bar, what, size, bar)


# ----------------------------------------------------------------------------------------------------------
# reading files
# ----------------------------------------------------------------------------------------------------------
def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensor dict from a weights file, never unpickling arbitrary objects (a large file's read is logged)."""
    from segexp.progress import timed

    path = Path(path).expanduser()
    if path.is_dir():
        return read_hf_folder(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file not found: {path} (`{{key}}`)", str(path))
    size = path.stat().st_size
    if size < 50e6:
        return _read_file(path)
    with timed(f"reading weights {path} ({size / 1e6:.0f} MB)"):
        return _read_file(path)


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if _is_torchscript_archive(path):
        # OpenAI's released CLIP .pt files are TorchScript archives; torch.jit.load reads them without pickle.
        sd = torch.jit.load(str(path), map_location="cpu").state_dict()
        return {k: v for k, v in sd.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle with code objects, truncated files...
        raise ValueError(
            f"refusing to load {path}: it is not a plain tensor checkpoint (weights_only=True failed: "
            f"{type(e).__name__}). Convert it to .safetensors or a plain state dict."
        ) from None
    return unwrap_state_dict(obj)


def unwrap_state_dict(obj) -> dict[str, torch.Tensor]:
    """Find the tensor dict inside common checkpoint containers and strip DDP prefixes."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "module"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("checkpoint does not hold a tensor state dict")
    return {re.sub(r"^module\.", "", k): v for k, v in obj.items()}


def read_hf_folder(folder: Path) -> dict[str, torch.Tensor]:
    for name in ("open_clip_model.safetensors", "model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin"):
        if (folder / name).is_file():
            return read_state_dict(folder / name)
    raise WeightsNotFoundError(f"no model.safetensors / *.bin weights in folder {folder} (`{{key}}`)", str(folder))


# ----------------------------------------------------------------------------------------------------------
# key layouts → open_clip layout
# ----------------------------------------------------------------------------------------------------------
_TIMM_TO_OPENCLIP = [
    (r"^patch_embed\.proj\.", "conv1."),
    (r"^norm_pre\.", "ln_pre."),
    (r"^blocks\.(\d+)\.norm1\.", r"transformer.resblocks.\1.ln_1."),
    (r"^blocks\.(\d+)\.norm2\.", r"transformer.resblocks.\1.ln_2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)", r"transformer.resblocks.\1.attn.in_proj_\2"),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"transformer.resblocks.\1.attn.out_proj."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"transformer.resblocks.\1.mlp.c_fc."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"transformer.resblocks.\1.mlp.c_proj."),
    (r"^norm\.", "ln_post."),
]


def _timm_visual_to_openclip(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if k == "cls_token":
            out["class_embedding"] = v.reshape(-1)
        elif k == "pos_embed":
            out["positional_embedding"] = v[0]
        elif k == "head.weight":
            out["proj"] = v.t().contiguous()
        elif k == "head.bias":
            continue
        else:
            for pat, rep in _TIMM_TO_OPENCLIP:
                if re.match(pat, k):
                    k = re.sub(pat, rep, k)
                    break
            out[k] = v
    return out


def to_open_clip_layout(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(open_clip-layout CLIP state dict, extras). Visual-only checkpoints give `visual.*` keys only.

    Handles OpenAI / open_clip (identical layouts), timm `vit_*_clip_*` visual towers and Alpha-CLIP's
    visual-only checkpoints (`attn.in_proj.weight` → `attn.in_proj_weight`, `conv1_alpha` → extras).
    """
    sd = {re.sub(r"^module\.", "", k): v for k, v in sd.items()}
    # OpenAI's integer buffers and causal masks are not weights (TorchScript archives include them)
    sd = {k: v for k, v in sd.items() if k not in ("input_resolution", "context_length", "vocab_size") and not k.endswith("attn_mask")}
    if "patch_embed.proj.weight" in sd:  # timm layout
        sd = {"visual." + k: v for k, v in _timm_visual_to_openclip(sd).items()}
    elif "conv1.weight" in sd:  # visual-only (Alpha-CLIP releases, or model.visual.state_dict())
        sd = {"visual." + k: v for k, v in sd.items()}
    sd = {re.sub(r"\.attn\.in_proj\.(weight|bias)$", r".attn.in_proj_\1", k): v for k, v in sd.items()}
    extras = {k: sd.pop(k) for k in [k for k in sd if "conv1_alpha" in k]}
    return sd, extras


# ----------------------------------------------------------------------------------------------------------
# open_clip tags
# ----------------------------------------------------------------------------------------------------------
def _cached_tag_file(model_name: str, tag: str) -> Path | None:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    candidates = [weights_dir() / f"{model_name}-{tag}.safetensors", weights_dir() / f"{model_name}-{tag}.pt"]
    url = cfg.get("url", "")
    if url:
        candidates.append(Path.home() / ".cache" / "clip" / os.path.basename(url))
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache

            repo = hub.strip("/")
            for fname in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
                hit = try_to_load_from_cache(repo_id=repo, filename=fname)
                if isinstance(hit, str):
                    candidates.append(Path(hit))
        except Exception:  # the cache lookup is best-effort and never touches the network
            pass
    return next((p for p in candidates if p.is_file()), None)


def _download_instruction(model_name: str, tag: str) -> str:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    where = []
    if cfg.get("hf_hub"):
        where.append(f"https://huggingface.co/{cfg['hf_hub'].strip('/')} (open_clip_model.safetensors)")
    if cfg.get("url"):
        where.append(cfg["url"])
    src = " or ".join(where) if where else "the model's release page"
    return (
        f"Pretrained weights '{model_name}' / '{tag}' are not available offline. Download {src} and either "
        f"save it as {weights_dir() / (model_name + '-' + tag + '.safetensors')} (or under ~/.cache/clip/) or "
        f"point at the file with `{{key}}=/path/to/file`. Pass `{{key}}=null` for random weights."
    )


#: weight files that segexp itself writes, and the command that writes them
MADE_BY_SEGEXP = {
    "segexp-tinyclip.safetensors": "Run `make tiny-clip` (`python -m segexp.run experiment=tiny_clip`, about 15 min "
                                   "on 2 CPU cores) to pretrain and export it there.",
}


def resolve(pretrained, model_name: str, *, override: str = "model.pretrained", allow_download: bool = False) -> Path | None:
    """Turn a `pretrained` value into a local path (None means random init)."""
    if is_random(pretrained):
        return None
    p = Path(str(pretrained)).expanduser()
    if p.exists():
        return p
    looks_like_path = os.sep in str(pretrained) or str(pretrained).endswith(WEIGHT_SUFFIXES)
    if looks_like_path:
        remedy = MADE_BY_SEGEXP.get(p.name, "Put the weights there or fix the path.")
        raise WeightsNotFoundError(f"`{{key}}={pretrained}`: no such file or folder. {remedy}", pretrained, override)
    import open_clip

    tag = str(pretrained)
    if tag not in open_clip.list_pretrained_tags_by_model(model_name):
        raise WeightsNotFoundError(
            f"`{{key}}={tag}` is neither a file nor an open_clip pretrained tag of '{model_name}' "
            f"(tags: {', '.join(open_clip.list_pretrained_tags_by_model(model_name)) or 'none'}).", tag, override
        )
    hit = _cached_tag_file(model_name, tag)
    if hit is not None:
        return hit
    if allow_download:
        try:
            return Path(open_clip.download_pretrained(open_clip.get_pretrained_cfg(model_name, tag)))
        except Exception:
            pass
    raise WeightsNotFoundError(_download_instruction(model_name, tag), tag, override)


# ----------------------------------------------------------------------------------------------------------
# timm backbones
# ----------------------------------------------------------------------------------------------------------
def _timm_hub_id(model_name: str) -> str:
    import timm

    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        raise WeightsNotFoundError(f"`{{key}}`: timm has no pretrained config for '{model_name}'.", model_name)
    return cfg.hf_hub_id or f"timm/{model_name}"


def resolve_timm(model_name: str, pretrained, *, override: str = "model.student.pretrained") -> Path | None:
    """A timm backbone's `pretrained` value → a local weight file (None: random init).

    `true` means timm's default tag for `model_name`, looked up in segexp's weights folder and the HF cache
    only (never downloaded here); a string is a file path.
    """
    if pretrained is False or is_random(pretrained) or str(pretrained).lower() == "false":
        return None
    if pretrained is True or str(pretrained).lower() == "true":
        hub = _timm_hub_id(model_name)
        candidates = [weights_dir() / f"timm-{model_name}.safetensors", weights_dir() / f"timm-{model_name}.pth"]
        try:
            from huggingface_hub import try_to_load_from_cache

            for fname in ("model.safetensors", "pytorch_model.bin"):
                hit = try_to_load_from_cache(repo_id=hub, filename=fname)
                if isinstance(hit, str):
                    candidates.append(Path(hit))
        except Exception:  # best-effort cache lookup, never the network
            pass
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is not None:
            return hit
        raise WeightsNotFoundError(
            f"timm weights for '{model_name}' are not available offline. Download "
            f"https://huggingface.co/{hub} (model.safetensors) and save it as {candidates[0]}, or point at the file "
            f"with `{{key}}=/path/to/model.safetensors`. Pass `{{key}}=false` for a randomly initialised student.",
            model_name, override)
    p = Path(str(pretrained)).expanduser()
    if p.is_file():
        return p
    raise WeightsNotFoundError(f"`{{key}}={pretrained}`: no such file. Put the timm weights there or fix the path.",
                               pretrained, override)
