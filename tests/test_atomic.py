"""Atomic writes: complete or absent, and created with the mode the user's umask asks for."""
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from segexp.atomic import atomic_path


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_follow_the_umask_even_when_the_writer_creates_them_0600(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        with atomic_path(tmp_path / "w.safetensors") as tmp:
            save_file({"x": torch.zeros(2)}, str(tmp))  # safetensors itself writes 0600
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == mode


def test_a_failed_write_leaves_neither_target_nor_temp(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.pt") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
