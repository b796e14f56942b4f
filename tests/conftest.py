"""Shared fixtures: config composition exactly as the CLI does it, and a CLI runner."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# tests never reach a hub or W&B servers
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# feature caches of test runs never land in (or come from) the user's ~/.cache/segexp
os.environ["SEGEXP_CACHE_DIR"] = tempfile.mkdtemp(prefix="segexp-test-cache-")

#: overrides that make any model fast on CPU
TINY = {
    "uninext": ["model.net.clip_name=segexp-ViT-T-16", "data.splits.train.size=8", "data.splits.val.size=4",
                "data.splits.test.size=4", "data.batch_size=4", "data.eval_batch_size=4"],
    "naclip": ["model.segmenter.clip_name=segexp-ViT-T-16", "data.splits.test.size=2", "data.splits.val.size=2"],
    "sam3": ["model.segmenter.image_size=112", "data.splits.train.size=2", "data.splits.val.size=2",
             "data.splits.test.size=2"],
    "distill": ["model.student.backbone=mobilenetv3_small_050", "model.teacher.clip_name=segexp-ViT-T-16",
                "data.dataset.image_size=112", "data.dataset.class_by=colour", "data.splits.train.size=64",
                "data.splits.val.size=16", "data.splits.test.size=16", "callbacks.early_stopping.patience=10"],
    "t2i_reid": [],  # the embedded default is already CPU-sized (2-block ViT, 1-layer BERT)
    "clip_pretrain": ["data.splits.train.size=16", "data.splits.val.size=8", "data.splits.zeroshot.size=8",
                      "data.splits.test.size=8", "data.batch_size=8", "data.eval_batch_size=8"],
}


def compose_cfg(overrides: list[str], output_dir: str | Path | None = None):
    """Compose like `python -m segexp.run <overrides>` and make `${hydra:...}` resolvable."""
    from segexp.config import compose_config

    return compose_config(overrides, output_dir or ROOT / "outputs" / "pytest")


def run_cli(args: list[str], tmp_path: Path, timeout: int = 600, env: dict | None = None, cwd: Path | None = None):
    """`python -m segexp.run ARGS` in a subprocess, outputs under tmp_path."""
    e = dict(os.environ)
    e.update({"SEGEXP_OUTPUT_ROOT": str(tmp_path / "outputs"), "SEGEXP_CACHE_DIR": str(tmp_path / "cache"),
              "PYTHONUNBUFFERED": "1"})
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "segexp.run", *args], cwd=cwd or ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)


def run_dirs(tmp_path: Path) -> list[Path]:
    """Run directories (those holding segexp's resolved config.yaml) written under tmp_path/outputs."""
    return sorted(p.parent for p in (tmp_path / "outputs").rglob("config.yaml") if p.parent.name != ".hydra")


def logged_metric(result, key: str) -> float:
    """The last `key = value` line segexp.run logged (its final metrics)."""
    found = re.findall(rf"{re.escape(key)} = (-?[0-9.]+(?:e[-+]?[0-9]+)?)", result.stdout + result.stderr)
    assert found, (result.stdout + result.stderr)[-3000:]
    return float(found[-1])


def assert_palette_predictions(run_dir: Path, labels: list, num_classes: int, ckpt_path: str | None = None) -> None:
    """`stage=predict` wrote one VOC-palette index PNG per image at its original size, whose labels are the model's
    own prediction (recomputed in-process from the run's resolved config, and `ckpt_path`), and its overlays."""
    import numpy as np
    from PIL import Image

    from segexp.callbacks import palette

    pngs = sorted((run_dir / "predictions").glob("*.png"))
    assert len(pngs) == len(labels)
    for png, lab in zip(pngs, labels):
        im = Image.open(png)
        assert im.mode == "P" and im.size == (lab.shape[1], lab.shape[0])
        assert im.getpalette()[: 3 * num_classes] == palette()[:num_classes].flatten().tolist()
        assert im.getpalette()[3:6] == [128, 0, 0]  # VOC palette: class 1 is dark red
        assert np.asarray(im).max() < num_classes
    expected = predict_in_process(run_dir, ckpt_path)
    assert sorted(expected) == [p.stem for p in pngs]
    for png in pngs:
        assert np.array_equal(np.asarray(Image.open(png)), expected[png.stem]), png.name
    assert len(list((run_dir / "predictions").glob("*_overlay.jpg"))) == len(labels)


def predict_in_process(run_dir: Path, ckpt_path: str | None = None) -> dict:
    """{image id: [h, w] uint8 prediction} from the run dir's resolved config, built as `segexp.run` builds it."""
    import lightning as L
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from segexp.callbacks.prediction_writer import prediction_name

    cfg = OmegaConf.load(run_dir / "config.yaml")
    L.seed_everything(cfg.seed, workers=True)  # the order of segexp.run.execute: seed, data, model
    datamodule, model = instantiate(cfg.data), instantiate(cfg.model, _convert_="partial")
    trainer = L.Trainer(accelerator="cpu", logger=False, callbacks=[], enable_progress_bar=False,
                        enable_model_summary=False, plugins=[instantiate(p) for p in cfg.trainer.plugins])
    out = {}
    for batch in trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt_path):
        for i, (pred, meta) in enumerate(zip(batch["pred"], batch["meta"])):
            out[prediction_name(meta, str(i))] = pred.numpy()
    return out


@pytest.fixture
def cli(tmp_path):
    return lambda args, **kw: run_cli(args, tmp_path, **kw)


#: fixtures that start the CLI or train: a test that uses one belongs to the slow tier
SLOW_FIXTURES = {"cli", "trained"}


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items
                if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError(f"these tests start the CLI or train but are not marked @pytest.mark.slow: {unmarked}")
