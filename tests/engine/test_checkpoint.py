"""Atomic checkpoint files, RNG capture and clear errors for unusable files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from adaptconv.engine.checkpoint import (
    CheckpointError,
    atomic_save,
    capture_rng,
    load_training_checkpoint,
    restore_rng,
    training_record,
)


def test_atomic_save_replaces_whole_files_only(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pth"
    atomic_save({"a": torch.ones(2)}, path)
    calls = []

    def broken_save(obj, f):
        f.write(b"half a file")
        calls.append(1)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert calls and torch.equal(torch.load(path)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"], "no temporary file is left behind"


def test_rng_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    atomic_save({"rng": capture_rng()}, tmp_path / "r.pth")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng(torch.load(tmp_path / "r.pth", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


@pytest.mark.parametrize("content", [b"", b"garbage", "truncated"])
def test_corrupt_checkpoint_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "checkpoint.pth"
    if content == "truncated":
        atomic_save({"x": torch.randn(1000)}, path)
        content = path.read_bytes()[:500]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="truncated or corrupt; it was not changed"):
        load_training_checkpoint(path)
    assert path.read_bytes() == content
    assert training_record(path) is None


def test_weights_file_is_not_a_training_checkpoint(tmp_path):
    atomic_save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="--pretrained PATH instead"):
        load_training_checkpoint(tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="no such file"):
        load_training_checkpoint(tmp_path / "none.pth")
