"""The layers' import boundaries: models, attention, losses and metrics work in a notebook with plain PyTorch."""
import json
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import json, sys
out = {}
for name in ("segexp.models", "segexp.attention", "segexp.losses", "segexp.metrics"):
    __import__(name)
    out[name] = sorted({m.split(".")[0] for m in sys.modules} & {"lightning", "pytorch_lightning", "lightning_fabric",
                                                                    "hydra", "omegaconf"})
    out[name + " data"] = sorted(m for m in sys.modules if m.startswith("segexp.data"))
print(json.dumps(out))
"""


def test_plain_pytorch_layers_import_neither_lightning_nor_hydra_and_models_no_data():
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout.strip().splitlines()[-1])
    for name in ("segexp.models", "segexp.attention", "segexp.losses", "segexp.metrics"):
        assert found[name] == [], f"importing {name} (after the ones before it) loaded {found[name]}"
    assert found["segexp.models data"] == [], "segexp.models imports segexp.data"
