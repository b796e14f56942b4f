"""Hydra configs, shipped in the wheel as `segexp.conf` (see pyproject.toml)."""
