# segexp: `make run` and `make test` set everything up on a fresh machine (a .venv beside this file).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.segexp-installed

.PHONY: help install run test test-fast bench tiny-clip clean-outputs

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install segexp (no-op when nothing changed)

run: $(STAMP)  ## the embedded default: AlphaClipAlign on synthetic shapes, offline (a few minutes on 2 cores)
	$(PY) -m segexp.run model=uninext loss=seg_align

test: $(STAMP)  ## the whole test suite
	$(PY) -m pytest -q

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
