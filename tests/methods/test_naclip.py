"""NAClipModule end to end: synthetic test stage, 5-strategy sweep, palette PNGs from a VOC fixture, weights."""
import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import assert_palette_predictions, run_dirs
from tests.data.fixtures import write_tree

TINY = ["model.segmenter.clip_name=segexp-ViT-T-16"]




@pytest.mark.slow
def test_synthetic_test_stage_writes_miou_and_per_class_table(cli, tmp_path):
    r = cli(["model=naclip", "data=synthetic_shapes", "stage=test", *TINY, "data.splits.test.size=3"])
    assert r.returncode == 0, r.stderr[-3000:]
    (d,) = run_dirs(tmp_path)
    assert "test/miou" in (d / "metrics.csv").read_text()
    table = (d / "test_per_class_iou.csv").read_text().splitlines()
    assert table[0] == "class,iou,acc" and table[1].startswith("background,")
    assert [row.split(",")[0] for row in table[-3:]] == ["mIoU", "mAcc", "aAcc"]
    assert "OpenCLIPAdapter: block 3/3 <- neighbour std=5 arch=reduced" in r.stderr + r.stdout


@pytest.mark.slow
def test_strategy_sweep_runs_every_option(cli, tmp_path):
    # relative block indices: ResCLIP's and SC-CLIP's ViT-B/16 indices scaled to the tiny CLIP's 4 blocks
    r = cli(["-m", "model=naclip", "data=synthetic_shapes", "stage=test",
             "attention=neighbour,csa,qq,value,vanilla,resclip,scclip", "attention.layer_index=relative", *TINY,
             "data.splits.test.size=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 7
    assert all((d / "test_per_class_iou.csv").is_file() for d in dirs)


@pytest.mark.slow
def test_predict_writes_palette_pngs_at_original_size(cli, tmp_path):
    root = tmp_path / "VOC2012"
    labels = write_tree(root, "voc21", 21)
    r = cli(["model=naclip", "data=voc21", f"data.root={root}", "stage=predict", *TINY, "data.num_workers=0"])
    assert r.returncode == 0, r.stderr[-3000:]
    (d,) = run_dirs(tmp_path)
    assert_palette_predictions(d, labels, 21)


def test_palette_png_round_trip(tmp_path):
    from segexp.callbacks import save_palette_png

    pred = np.random.default_rng(0).integers(0, 60, (37, 53)).astype(np.uint8)
    save_palette_png(pred, tmp_path / "x.png")
    back = np.asarray(Image.open(tmp_path / "x.png"))
    assert np.array_equal(back, pred)


@pytest.mark.slow
def test_openai_tag_offline_fails_with_the_download_message(cli):
    r = cli(["model=naclip", "model.segmenter.clip_name=ViT-B-16", "model.segmenter.pretrained=openai",
             "data.splits.test.size=1"], env={"HOME": "/nonexistent-home", "SEGEXP_WEIGHTS_DIR": "/nonexistent"})
    assert r.returncode != 0
    assert "missing weights" in r.stderr and "huggingface.co/timm/vit_base_patch16_clip_224.openai" in r.stderr
    assert "model.segmenter.pretrained=/path/to/file" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("layout", ["openai_jit", "open_clip_pt", "open_clip_safetensors"])
def test_pretrained_file_formats_load(layout, tmp_path):
    from segexp.models import create_clip

    torch.manual_seed(3)
    ref = create_clip("segexp-ViT-T-16")
    path = tmp_path / "ViT-T.pt"
    if layout == "openai_jit":
        # OpenAI releases TorchScript archives whose state_dict has CLIP's keys plus three integer buffers
        ref.register_buffer("input_resolution", torch.tensor(224))
        traced = torch.jit.trace_module(ref, {"encode_image": torch.randn(1, 3, 224, 224)}, check_trace=False)
        traced.save(str(path))
        del ref.input_resolution
    elif layout == "open_clip_pt":
        torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, path)
    else:
        from safetensors.torch import save_file

        path = tmp_path / "open_clip_model.safetensors"
        save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    loaded = create_clip("segexp-ViT-T-16", str(path))
    for k, v in ref.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
