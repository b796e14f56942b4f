"""Every score every method logs is in percent: each method's own evaluation path, fed a known input (perfect
predictions, or a prediction whose accuracy the test counts itself), logs the known value ×100."""
import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import TINY, compose_cfg

SCORE_KINDS = ("miou", "macc", "aacc", "iou", "r1", "r5", "r10", "map", "minp", "zeroshot_acc")


def evaluate(tmp_path, overrides, patch, stage="test"):
    """Build the method from its real (tiny) config, apply `patch(module)`, run `trainer.<stage>`; logged metrics."""
    cfg = compose_cfg(overrides, tmp_path)
    dm, module = instantiate(cfg.data), instantiate(cfg.model, _convert_="partial")
    patch(module)
    t = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, default_root_dir=tmp_path)
    getattr(t, stage)(module, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in t.callback_metrics.items()}


def scores_of(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.split("/")[-1].lower().removeprefix("composed_").startswith(SCORE_KINDS)}


def perfect_semantic(module):
    module.predictions = lambda batch: [m.clone() for m in batch["mask"]]


@pytest.mark.parametrize("method", ["naclip", "distill", "sam3"])
def test_semantic_scores_and_the_per_class_table_are_percent(method, tmp_path):
    extra = ["data=synthetic_shapes"] if method == "distill" else []
    metrics = evaluate(tmp_path, [f"model={method}", *extra, *TINY[method]], perfect_semantic)
    got = scores_of(metrics)
    assert {"test/miou", "test/macc", "test/aacc"} <= set(got)
    assert got == pytest.approx({k: 100.0 for k in got}), got
    table = (tmp_path / "test_per_class_iou.csv").read_text().splitlines()
    assert table[-3:] == ["mIoU,100.0000,", "mAcc,,100.0000", "aAcc,,100.0000"]


def test_region_iou_is_percent(tmp_path):
    def patch(module):
        step = module._shared_step

        def perfect(batch):  # the real step, with logits that reproduce each region's target mask exactly
            out, losses = step(batch)
            target = batch["target_mask"]
            return {**out, "seg_logits": torch.where(target == 1, 10.0, -10.0)[:, None]}, losses

        module._shared_step = perfect

    got = scores_of(evaluate(tmp_path, ["model=uninext", *TINY["uninext"], f"model.cache_dir={tmp_path}/c"], patch))
    assert got == {"test/iou": pytest.approx(100.0)}


def test_retrieval_and_zero_shot_accuracy_are_percent(tmp_path, monkeypatch):
    import segexp.methods.clip_pretrain as cp

    # every class text is a different axis and every image points along the first: zero-shot answers class 1
    monkeypatch.setattr(cp, "text_features", lambda model, tok, names, templates: torch.eye(len(names), 4))
    masks = []

    def patch(module):
        module.encode = lambda images, captions: (torch.eye(len(captions)),) * 2  # every pair ranks its own first
        module.model.encode_image = lambda images: torch.ones(len(images), 4) * torch.tensor([1.0, 0, 0, 0])
        step = module.validation_step

        def record(batch, batch_idx, dataloader_idx=0):
            if dataloader_idx == 1:
                masks.append(batch["mask"].clone())
            return step(batch, batch_idx, dataloader_idx)

        module.validation_step = record

    got = scores_of(evaluate(tmp_path, ["model=clip_pretrain", *TINY["clip_pretrain"]], patch, stage="validate"))
    assert got["val/r1_i2t"] == got["val/r1_t2i"] == got["val/r1"] == pytest.approx(100.0)
    # counted here, independently: the share of zero-shot images whose object is class 1
    flat = torch.cat(masks).flatten(1).numpy()
    dominant = np.array([np.bincount(m[(m != 0) & (m != 255)], minlength=256).argmax() for m in flat])
    expected = 100.0 * float(np.mean(dominant == 1))
    assert 0 < expected < 100
    assert got["val/zeroshot_acc_single"] == pytest.approx(expected)
    assert got["val/zeroshot_acc_ensemble"] == pytest.approx(expected)


def test_reid_rank_metrics_are_percent(tmp_path):
    def patch(module):
        def one_hot(pids):
            return torch.nn.functional.one_hot(pids.long() % 64, 64).float()

        q = module.query_embeddings

        def queries(batch):
            _, _, pids = q(batch)
            return one_hot(pids), one_hot(pids), pids

        module.query_embeddings = queries
        module.gallery_embeddings = lambda batch: (one_hot(torch.as_tensor(batch["pid"])), torch.as_tensor(batch["pid"]))

    got = scores_of(evaluate(tmp_path, ["model=t2i_reid", *TINY["t2i_reid"]], patch))
    assert {"test/R1", "test/mAP", "test/mINP", "test/composed_R1"} <= set(got)
    assert got == pytest.approx({k: 100.0 for k in got}), got
