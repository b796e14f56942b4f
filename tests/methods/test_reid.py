"""ReIDModule: training beats chance, the sweep of the issue runs, a checkpoint carries its vocabulary, queries never
see an image, and every trainable parameter (the loss's included) is optimised."""
import pytest
import torch
from hydra.utils import instantiate

from segexp.data import collate
from tests.conftest import TINY, compose_cfg, logged_metric, run_cli, run_dirs

ARGS = ["model=t2i_reid", *TINY["t2i_reid"]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reid")
    r = run_cli(ARGS, tmp)  # the embedded default: 3 epochs
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = run_dirs(tmp)
    return run, r


@pytest.mark.slow
def test_r1_after_training_is_at_least_three_times_chance(trained):
    _, r = trained
    chance = 100.0 / 32  # 32 test identities, 4 images each: 4 relevant of 128 per query, R@1 chance = 1/32
    assert logged_metric(r, "test/R1") >= 3 * chance
    # composed queries (identity text fused with the clothing text) are logged beside the text queries and learn too
    # (seen here: test R1 28.1 after the default's 3 epochs)
    assert logged_metric(r, "test/composed_R1") >= 3 * chance
    for prefix in ("test/", "test/composed_"):
        r1, r5, r10 = (logged_metric(r, f"{prefix}R{k}") for k in (1, 5, 10))
        assert r1 <= r5 <= r10 <= 100


@pytest.mark.slow
def test_checkpoint_carries_the_vocabulary(trained, tmp_path):
    run, r = trained
    again = run_cli([*ARGS, "stage=test", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert "[CLS]" in ckpt["segexp"]["tokenizer"]
    assert logged_metric(again, "test/mAP") > 0


@pytest.mark.slow
def test_the_issue_sweep_runs_four_jobs(tmp_path):
    r = run_cli(["-m", *ARGS, "loss.decouple=0,0.1", "model.id_projection=unified,residual", "trainer.max_steps=5"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 4
    assert all("test/R1" in (d / "metrics.csv").read_text() for d in dirs)


@pytest.fixture(scope="module")
def module():
    cfg = compose_cfg([*ARGS, "model.optim.scheduler=null"])
    dm = instantiate(cfg.data)
    m = instantiate(cfg.model, _convert_="partial")
    train = dm.dataset("train")
    m.net = m.net_fn(num_classes=train.num_classes)
    m.net.text_encoder.prepare(train.all_texts(), None)
    return m.eval(), dm


def test_queries_never_see_an_image(module):
    m, dm = module
    batch = collate([dm.dataset("test")[i] for i in range(8)])
    text_q, composed_q, qids = m.query_embeddings(batch)
    no_image = {k: v for k, v in batch.items() if k != "image"}

    def refuse(*a, **k):
        raise AssertionError("the image encoder ran while encoding queries")

    forward = m.net.image_encoder.forward
    m.net.image_encoder.forward = refuse
    try:
        t2, c2, q2 = m.query_embeddings(no_image)
    finally:
        m.net.image_encoder.forward = forward
    assert torch.equal(t2, text_q) and torch.equal(c2, composed_q) and torch.equal(q2, qids)
    gallery, gids = m.gallery_embeddings(batch)
    assert gallery.shape == text_q.shape and torch.equal(gids, qids)


def test_optimiser_holds_every_trainable_parameter_including_the_losss(module):
    m, _ = module
    opt = m.configure_optimizers()
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    trainable = {id(p) for p in m.parameters() if p.requires_grad}
    assert trainable <= in_opt
    assert id(m.loss.logit_scale) in in_opt and id(m.loss.match_bias) in in_opt
    assert m.net.id_classifier.out_features == 1024  # from the training identities, never a fixed 8000
