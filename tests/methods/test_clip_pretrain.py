"""CLIPPretrainModule: a short fit logs retrieval and zero-shot metrics and exports a checkpoint that the
other methods load exactly like OpenAI weights."""
import csv

import pytest

import torch

from tests.conftest import TINY, run_dirs




@pytest.mark.slow
def test_short_pretraining_exports_open_clip_weights_that_naclip_loads(cli, tmp_path):
    export = tmp_path / "tiny" / "segexp-tinyclip.safetensors"
    r = cli(["model=clip_pretrain", "trainer.max_epochs=1", "trainer.log_every_n_steps=1", f"model.export_path={export}",
             *TINY["clip_pretrain"]])
    assert r.returncode == 0, r.stderr[-3000:]
    (d,) = run_dirs(tmp_path)
    header = open(d / "metrics.csv").readline()
    for key in ("train/loss", "train/r1_i2t_batch", "train/logit_scale", "val/r1_i2t", "val/r1_t2i",
                "val/zeroshot_acc_single", "val/zeroshot_acc_ensemble"):
        assert key in header, key
    assert export.is_file() and (export.parent / "segexp-tinyclip.json").is_file()

    from segexp.models import create_clip

    loaded = create_clip("segexp-tinyclip", str(export))
    from safetensors.torch import load_file

    sd = load_file(str(export))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in sd.items())

    r = cli(["experiment=naclip_tinyclip", f"model.segmenter.pretrained={export}", "data.splits.test.size=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    (naclip_dir,) = [p for p in run_dirs(tmp_path) if p != d]
    rows = list(csv.DictReader(open(naclip_dir / "metrics.csv")))
    assert any(row.get("test/miou") for row in rows)


@pytest.mark.parametrize("limit", [{"fast_dev_run": True}, {"max_steps": 1}])
def test_a_smoke_run_exports_into_its_run_dir_not_over_the_tiny_clip(tmp_path, limit):
    import lightning as L
    from hydra.utils import instantiate

    from tests.conftest import compose_cfg

    export = tmp_path / "tiny" / "segexp-tinyclip.safetensors"
    export.parent.mkdir()
    export.write_bytes(b"the trained export")
    cfg = compose_cfg(["model=clip_pretrain", *TINY["clip_pretrain"], f"model.export_path={export}"], tmp_path)
    t = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, default_root_dir=tmp_path / "run", limit_val_batches=0, **limit)
    t.fit(instantiate(cfg.model, _convert_="partial"), datamodule=instantiate(cfg.data))
    assert export.read_bytes() == b"the trained export"
    assert (tmp_path / "run" / "export" / "segexp-tinyclip.safetensors").is_file()


def test_a_missing_tiny_clip_says_how_to_make_it(tmp_path):
    from segexp.weights import WeightsNotFoundError, resolve

    with pytest.raises(WeightsNotFoundError, match=r"make tiny-clip"):
        resolve(str(tmp_path / "tiny_clip" / "segexp-tinyclip.safetensors"), "segexp-tinyclip")
