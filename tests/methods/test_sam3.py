"""SAM3 as a text-prompted semantic segmenter: exactness without modified layers, refinements, fine-tuning, errors."""
import pytest
import torch

from segexp.attention import AttentionSpec
from segexp.models.sam3 import Sam3Segmenter
from tests.conftest import run_dirs

NAMES = [["background"], ["red circle"], ["blue square"]]
IMAGE = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(0))


def segmenter(**kw):
    torch.manual_seed(0)
    seg = Sam3Segmenter(size="tiny", image_size=112, **kw).eval()
    seg.set_classes(NAMES)
    return seg


def test_no_modified_layer_equals_plain_transformers_sam3():
    plain, hooked = segmenter(), segmenter(attention=AttentionSpec(layers=[]))
    out_a = plain.prompt_outputs(IMAGE)
    out_b = hooked.prompt_outputs(IMAGE)
    assert torch.equal(out_a.pred_masks, out_b.pred_masks) and torch.equal(out_a.pred_logits, out_b.pred_logits)
    pa, ya = plain(IMAGE, (50, 70))
    pb, yb = hooked(IMAGE, (50, 70))
    assert torch.equal(pa, pb) and torch.equal(ya, yb)


def test_semantic_map_merges_instances_and_thresholds_to_background():
    seg = segmenter(score_threshold=0.0)
    probs, pred = seg(IMAGE, (40, 60))
    assert probs.shape == (3, 40, 60) and pred.shape == (40, 60)
    assert torch.allclose(probs.sum(0), torch.ones(40, 60), atol=1e-5)
    assert set(pred.unique().tolist()) <= {1, 2}, "with threshold 0 every pixel gets a prompted class"
    seg.score_threshold = 1.0
    assert (seg(IMAGE, (40, 60))[1] == 0).all(), "nothing reaches a score of 1: all background"


def test_no_refinement_leaves_the_logits_alone():
    logits = torch.randn(1, 2, 40, 40)
    assert torch.equal(segmenter().refine_logits(logits, torch.randn(1, 3, 80, 80)), logits)


def test_pamr_refinement_spreads_logits_within_an_image_region_and_never_across_its_edge():
    image = torch.full((1, 3, 80, 80), -1.0)
    image[..., 40:] = 1.0  # two flat colour regions, split at column 20 of the 40x40 logit grid
    logits = torch.zeros(1, 2, 40, 40)
    logits[:, 0, 12:20, 4:12] = 4.0  # a square inside the left region
    out = segmenter(refine="pamr", pamr_steps=3).refine_logits(logits, image)
    assert out[0, 0, :, 20:].abs().max() < 1e-6, "nothing leaks across the colour edge"
    assert out[0, 0, 30, 10] > 0.1 and out[0, 0, 16, 8] < 4.0, "inside its region the square spreads out"
    assert torch.allclose(out[0, 1], torch.zeros(40, 40)), "an all-zero class stays zero"


def test_gaussian_refinement_turns_an_impulse_into_the_normalised_gaussian():
    logits = torch.zeros(1, 1, 41, 41)
    logits[0, 0, 20, 20] = 1.0
    out = segmenter(refine="gaussian", refine_std=2.0).refine_logits(logits, torch.zeros(1, 3, 41, 41))[0, 0]
    t = torch.arange(-6, 7, dtype=torch.float64)  # radius 3σ
    g = torch.exp(-t**2 / 8.0)
    expected = torch.zeros(41, 41, dtype=torch.float64)
    expected[14:27, 14:27] = torch.outer(g, g) / g.sum() ** 2
    assert torch.allclose(out.double(), expected, atol=1e-7)
    assert abs(float(out.sum()) - 1.0) < 1e-5, "the blur keeps the mass"


def test_query_refinement_uses_box_centres():
    base, refined = segmenter(), segmenter(query_refine={"enabled": True, "std": 0.1})
    a, b = base.prompt_outputs(IMAGE), refined.prompt_outputs(IMAGE)
    assert refined.query_refiner.centres.shape == (2, 20, 2)
    assert torch.equal(a.pred_logits, b.pred_logits), "scores come from the decoder, before the refinement"
    assert not torch.allclose(a.pred_masks, b.pred_masks)


def test_query_refiner_adds_box_centred_self_attention_to_the_decoder_queries():
    import math

    from segexp.models.sam3 import QueryRefiner

    model = torch.nn.Module()
    model.detr_decoder, model.mask_decoder = torch.nn.Identity(), torch.nn.Module()
    model.mask_decoder.forward = lambda decoder_queries: decoder_queries
    refiner = QueryRefiner(model, std=0.2)
    q = torch.randn(1, 3, 4, dtype=torch.float64)
    refiner.centres = torch.tensor([[[0.1, 0.1], [0.15, 0.1], [0.9, 0.8]]], dtype=torch.float64)
    out = model.mask_decoder(decoder_queries=q)
    expected = q.clone()
    for i in range(3):  # softmax_j(q_i·q_j/√D + exp(-|c_i - c_j|² / 2σ²)), added to q_i
        logits = [float(q[0, i] @ q[0, j]) / math.sqrt(4)
                  + math.exp(-float(((refiner.centres[0, i] - refiner.centres[0, j]) ** 2).sum()) / (2 * 0.2**2))
                  for j in range(3)]
        w = torch.tensor(logits, dtype=torch.float64).softmax(0)
        expected[0, i] += (w[:, None] * q[0]).sum(0)
    assert torch.allclose(out, expected)


def test_lora_wraps_backbone_qkv_and_starts_as_identity():
    base, lora = segmenter(), segmenter(lora_rank=4)
    assert len(lora.lora) == 3 * 32
    assert torch.allclose(base.prompt_outputs(IMAGE).pred_masks, lora.prompt_outputs(IMAGE).pred_masks, atol=1e-5)
    groups = lora.trainable_parameters()
    assert groups["lora"] and groups["decoder"]


def test_missing_hf_folder_gives_the_download_message(tmp_path):
    from segexp.weights import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="huggingface.co/facebook/sam3"):
        Sam3Segmenter(size="base", pretrained=str(tmp_path / "sam3"))


@pytest.mark.slow
def test_cli_tiny_sam3_with_neighbour_layers_reports_miou_and_modified_layers(cli, tmp_path):
    r = cli(["model=sam3", "model.segmenter.size=tiny", "attention=neighbour", "attention.layers=[5,6]", "attention.std=2.0",
             "data=synthetic_shapes", "stage=test", "data.splits.test.size=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert "Sam3ViTAdapter: block 5/31 <- neighbour std=2 arch=vanilla (window" in log
    (d,) = run_dirs(tmp_path)
    assert "test/miou" in (d / "metrics.csv").read_text()


@pytest.mark.slow
def test_cli_layer_sweep_runs_four_jobs_and_bad_layers_fail_cleanly(cli, tmp_path):
    r = cli(["-m", "model=sam3", "attention=neighbour", "attention.layers=[5,6],[14,17]", "attention.std=1.0,2.0",
             "stage=test", "data.splits.test.size=1", "model.segmenter.image_size=112"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(run_dirs(tmp_path)) == 4
    bad = cli(["model=sam3", "attention=neighbour", "attention.layers=[40]", "stage=test"], timeout=120)
    assert bad.returncode == 2 and "outside the model's 32 blocks" in bad.stderr and "Traceback" not in bad.stderr
