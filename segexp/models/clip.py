"""CLIP through open_clip: creation with segexp's tiny configs, weight loading, dense features, text queries."""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from segexp import weights

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "clip_configs"


@functools.cache
def register_model_configs() -> None:
    """Make segexp's open_clip model configs (e.g. `segexp-ViT-T-16`) known to open_clip."""
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)


def clip_depth(model_name: str) -> int:
    """Number of visual blocks of an open_clip model config, without building the model."""
    import open_clip

    register_model_configs()
    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        raise ValueError(f"unknown open_clip model '{model_name}'")
    return int(cfg["vision_cfg"]["layers"])


def create_clip(
    model_name: str = "ViT-B-16",
    pretrained: str | None = None,
    force_quick_gelu: bool = True,
    allow_download: bool = False,
    override: str = "model.pretrained",
):
    """An open_clip CLIP in eval mode.

    `force_quick_gelu` defaults to True: OpenAI weights need QuickGELU and open_clip 3.x only warns
    (and builds nn.GELU) when it is missing.
    """
    import open_clip

    register_model_configs()
    path = weights.resolve(pretrained, model_name, override=override, allow_download=allow_download)
    model = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=force_quick_gelu)
    if path is None:
        weights.warn_random(f"CLIP {model_name}", model)
    else:
        sd, _ = weights.to_open_clip_layout(weights.read_state_dict(path))
        load_clip_state_dict(model, sd, source=str(path))
    return model.eval()


def load_clip_state_dict(model, sd: dict[str, torch.Tensor], source: str = "state dict") -> None:
    """Strict load; a visual-only checkpoint loads the visual tower strictly and says the text tower is random."""
    if any(not k.startswith("visual.") for k in sd):
        model.load_state_dict(sd, strict=True)
        log.info("loaded CLIP weights from %s", source)
    else:
        model.visual.load_state_dict({k[len("visual."):]: v for k, v in sd.items()}, strict=True)
        log.warning("loaded the VISUAL tower only from %s; the text tower stays random", source)


# ----------------------------------------------------------------------------------------------------------
# dense visual features (NACLIP's encode_image(return_all=True))
# ----------------------------------------------------------------------------------------------------------
def interpolate_pos_embed(pos: torch.Tensor, grid: tuple[int, int], prefix: int = 1) -> torch.Tensor:
    """Resize a [prefix + g0*g0, D] table to `grid` exactly as NACLIP/SCLIP do.

    bicubic with scale_factor=((gh+0.1)/g0, (gw+0.1)/g0) and recompute_scale_factor=False: the sampling
    positions follow the scale factor, not `size=`. Only applied when the token count differs.
    """
    gh, gw = grid
    n = pos.shape[0] - prefix
    if gh * gw == n:
        return pos
    g0 = int(round(n**0.5))
    table = pos[prefix:].reshape(1, g0, g0, -1).permute(0, 3, 1, 2)  # [1, D, g0, g0]
    table = F.interpolate(
        table.float(),
        scale_factor=((gh + 0.1) / g0, (gw + 0.1) / g0),
        mode="bicubic",
        align_corners=False,
        recompute_scale_factor=False,
    ).to(pos.dtype)
    assert table.shape[-2:] == (gh, gw), table.shape
    return torch.cat([pos[:prefix], table.permute(0, 2, 3, 1).reshape(gh * gw, -1)], dim=0)


def visual_embed(visual, x: torch.Tensor, add: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """conv1 (+ `add`, e.g. Alpha-CLIP's alpha embedding) → CLS → (interpolated) pos-embed → ln_pre.

    [B,3,H,W] → ([B, 1+N, width], grid).
    """
    t = visual.conv1(x)  # [B, width, gh, gw]; the right/bottom remainder of H, W is dropped
    if add is not None:
        t = t + add
    grid = (t.shape[-2], t.shape[-1])
    t = t.flatten(2).transpose(1, 2)  # [B, N, width], row-major
    cls = visual.class_embedding.to(t.dtype).expand(t.shape[0], 1, -1)
    t = torch.cat([cls, t], dim=1)
    t = t + interpolate_pos_embed(visual.positional_embedding, grid).to(t.dtype)
    return visual.ln_pre(t), grid


def dense_features(visual, x: torch.Tensor) -> torch.Tensor:
    """ln_post(all tokens) @ proj: [B,3,H,W] → [B, 1+N, embed_dim] (CLS first, not normalised)."""
    t, _ = visual_embed(visual, x)
    t = visual.transformer(t)
    t = visual.ln_post(t)
    return t @ visual.proj if visual.proj is not None else t


# ----------------------------------------------------------------------------------------------------------
# text queries
# ----------------------------------------------------------------------------------------------------------
def imagenet_templates() -> tuple:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(OPENAI_IMAGENET_TEMPLATES)


@torch.no_grad()
def text_features(model, tokenizer, names: Sequence[str], templates: Sequence = None, batch: int = 256) -> torch.Tensor:
    """[len(names), embed_dim] unit vectors: per name, normalise each template's embedding, average, renormalise."""
    from segexp.progress import track

    templates = imagenet_templates() if templates is None else templates
    out = []
    # a long vocabulary x 80 templates takes a while on CPU: show progress (off for short lists)
    for name in track(names, f"text features ({len(templates)} templates)", min_total=16, unit="classes"):
        texts = [t(name) if callable(t) else t.format(name) for t in templates]
        feats = torch.cat([model.encode_text(tokenizer(texts[i : i + batch])) for i in range(0, len(texts), batch)])
        feats = F.normalize(feats, dim=-1).mean(0)
        out.append(F.normalize(feats, dim=-1))
    return torch.stack(out)
