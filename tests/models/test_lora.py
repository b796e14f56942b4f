"""LoRA: the frozen layer's function at init, only the adapters train, and the trained adapter merges exactly."""
import torch

from segexp.models.lora import LoRALinear, add_lora


def test_lora_starts_as_the_frozen_layer_trains_only_adapters_and_merges_exactly():
    torch.manual_seed(0)
    base = torch.nn.Linear(8, 6)
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    lora = LoRALinear(base, rank=2, alpha=4.0)
    x, y = torch.randn(32, 8), torch.randn(32, 6)
    assert torch.equal(lora(x), torch.nn.functional.linear(x, frozen["weight"], frozen["bias"]))
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["lora_a", "lora_b"]
    opt = torch.optim.SGD([p for p in lora.parameters() if p.requires_grad], lr=0.1)
    first = None
    for _ in range(20):
        loss = ((lora(x) - y) ** 2).mean()
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first and lora.lora_b.abs().sum() > 0
    assert all(torch.equal(base.state_dict()[k], v) for k, v in frozen.items()), "the base layer never changes"
    merged = lora.merged()
    assert isinstance(merged, torch.nn.Linear) and torch.allclose(merged(x), lora(x), atol=1e-6)


def test_add_lora_wraps_the_named_linears_only():
    model = torch.nn.ModuleDict({"attn": torch.nn.ModuleDict({"q": torch.nn.Linear(4, 4), "o": torch.nn.Linear(4, 4)})})
    assert add_lora(model, ("q",), rank=2) == ["attn.q"]
    assert isinstance(model["attn"]["q"], LoRALinear) and isinstance(model["attn"]["o"], torch.nn.Linear)
