"""Prompt templates for text classifiers: data files here (one template per line, `{}` for the class name).

`openai80` is open_clip's OpenAI ImageNet list (what NACLIP, SCLIP and ClearCLIP use), `maskclip85` MaskCLIP's
(`tools/maskclip_utils/prompt_engineering.py`), `single` "a photo of a {}."; any other value is a path to a text
file in the same format.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Sequence


def packaged() -> list[str]:
    return sorted(["openai80", *(p.name.removesuffix(".txt") for p in files(__name__).iterdir() if p.name.endswith(".txt"))])


def load(spec: str | Sequence[str] | None) -> tuple:
    """Templates as a tuple of format strings (or open_clip's callables for openai80); None means openai80."""
    if spec is None or spec == "openai80":
        from segexp.models.clip import imagenet_templates

        return imagenet_templates()
    if not isinstance(spec, str):  # an explicit list from a config
        return _checked(tuple(spec), "the given list")
    resource = files(__name__).joinpath(f"{spec}.txt")
    path = Path(str(resource)) if resource.is_file() else Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"templates={spec!r}: neither a packaged template set ({', '.join(packaged())}) "
                                f"nor a text file (one template per line, {{}} for the class name)")
    return _checked(tuple(line.strip() for line in path.read_text().splitlines() if line.strip()), str(path))


def _checked(templates: tuple, where: str) -> tuple:
    bad = [t for t in templates if "{}" not in t]
    if not templates or bad:
        raise ValueError(f"templates from {where}: every template needs one {{}} for the class name "
                         f"({'none given' if not templates else f'not in {bad[0]!r}'})")
    return templates
