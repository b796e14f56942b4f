"""`python -m segexp.run --help`: segexp's own usage, written from the config groups as they are installed.

Hydra's help (every internal option and the whole composed config) stays at `--hydra-help`.
"""
from __future__ import annotations

from importlib.resources import files

#: groups that hold set-up rather than choices a user makes
HIDDEN_GROUPS = ("hydra", "paths")
#: options the launcher plugins bring (not files in conf/)
PLUGIN_LAUNCHERS = "basic (default), joblib, submitit_slurm"

EXAMPLES = [
    ("python -m segexp.run", "the embedded default, offline on synthetic shapes"),
    ("python -m segexp.run model=naclip stage=predict data=folder data.root=DIR 'data.class_names=[cat,dog|puppy]'",
     "your photos, by words"),
    ("python -m segexp.run -m model=naclip data=synthetic_shapes stage=test attention=neighbour,csa,qq,value",
     "a 4-job sweep"),
    ("python -m segexp.run model=distill trainer.max_epochs=6 logger=wandb", "train, logging to W&B (offline)"),
    ("python -m segexp.run stage=predict ckpt_path=RUN/checkpoints/best-epoch05.ckpt data=folder data.root=DIR",
     "predict from a checkpoint alone"),
]


def groups() -> dict[str, list[str]]:
    """{group: options} of the installed configs, without internals (`_`-prefixed options, schemas)."""
    conf = files("segexp.conf")
    out: dict[str, list[str]] = {}

    def walk(node, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir() and not child.name.startswith(("_", ".")) and child.name != "schema":
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".yaml") and not child.name.startswith("_") and prefix:
                out.setdefault(prefix.rstrip("/"), []).append(child.name[: -len(".yaml")])

    walk(conf, "")
    return out


def description(model: str) -> str:
    """The first sentence of a model option's header comment (its YAML file documents it)."""
    text = files("segexp.conf").joinpath("model", f"{model}.yaml").read_text()
    line = next((ln[2:] for ln in text.splitlines() if ln.startswith("# ") and "@package" not in ln), "")
    first = line.split(". ")[0].rstrip(".")
    return first if len(first) <= 96 else first[:93] + "..."


def usage() -> str:
    lines = ["segexp: CLIP-based segmentation and retrieval experiments, one config group per concern.", "",
             "usage: python -m segexp.run [-m] [GROUP=OPTION ...] [KEY=VALUE ...]     (or: segexp ...)",
             "       -m runs a sweep (comma-separated values), one job per combination", "", "methods (model=):"]
    found = groups()
    lines += [f"  {name:<14} {description(name)}" for name in found.pop("model", [])]
    lines += ["", "groups (GROUP=OPTION; the model option brings its natural data and loss):"]
    for group, options in found.items():
        if group == "hydra/launcher":
            options = [PLUGIN_LAUNCHERS, *options]
        if group not in HIDDEN_GROUPS:
            lines.append(f"  {group:<16} {', '.join(options)}")
    lines += ["", "common keys: stage=fit|validate|test|predict  ckpt_path=FILE|last|best  resume=true  seed=N",
              "             trainer.max_epochs=N  trainer.accelerator=gpu  data.root=DIR  attention.layers=[10,11]",
              "", "examples:"]
    for cmd, what in EXAMPLES:
        lines += [f"  # {what}", f"  {cmd}"]
    lines += ["", "the composed config: --cfg job --resolve (one group: --cfg job --resolve -p model)",
              "Hydra's own options: --hydra-help;  more: README.md and docs/"]
    return "\n".join(lines)
