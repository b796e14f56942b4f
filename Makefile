# segexp: `make run` and `make test` set everything up on a fresh machine (a .venv beside this file).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.segexp-installed
LOCK   := requirements.lock

.PHONY: help install lock run test test-fast bench tiny-clip clean-outputs

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# The lock file constrains every package to the exact version it records; pyproject.toml's ranges say what
# segexp supports, the lock what was tested.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install segexp at the locked versions (no-op when nothing changed)

lock:  ## re-resolve pyproject.toml's ranges in a fresh venv and write the exact versions to requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q -e '.[test]'
	{ echo "# exact versions of a fresh \`pip install -e '.[test]'\` ($$(uname -m), Python $$(.lock-venv/bin/python -c 'import platform; print(platform.python_version())')); regenerate with \`make lock\`"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK)
	rm -rf .lock-venv

run: $(STAMP)  ## the embedded default: AlphaClipAlign on synthetic shapes, offline (a few minutes on 2 cores)
	$(PY) -m segexp.run model=uninext loss=seg_align

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(PY) -m pytest -q

test-fast: $(STAMP)  ## every unit, no training runs or CLI subprocesses (under 3 minutes)
	$(PY) -m pytest -q -m "not slow"

tiny-clip: $(STAMP)  ## pretrain the tiny CLIP on synthetic captions (~15 min on 2 cores) into ~/.cache/segexp/tiny_clip/
	$(PY) -m segexp.run experiment=tiny_clip

bench: $(STAMP)  ## speed / memory benchmarks; tables are written under experiments/bench/
	$(PY) experiments/bench/teacher_cache.py
	$(PY) experiments/bench/naclip_speed.py
	$(PY) experiments/bench/sam3_backbone.py
	$(PY) experiments/bench/distill_cache.py
	$(PY) experiments/bench/reid_eval.py

clean-outputs:  ## remove run directories
	rm -rf outputs/20* outputs/multirun
