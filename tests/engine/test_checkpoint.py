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


def _flip_a_data_bit(path, tmp_path):
    """A copy of ``path`` with one bit flipped inside a tensor's bytes (the zip member's data, past its header)."""
    import struct
    import zipfile

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if "/data/" in i.filename)
    name_len, extra_len = struct.unpack("<HH", data[member.header_offset + 26 : member.header_offset + 30])
    data[member.header_offset + 30 + name_len + extra_len + 3] ^= 0x10
    out = tmp_path / "flipped.pth"
    out.write_bytes(bytes(data))
    return out, member.filename


def test_a_flipped_bit_is_refused_on_every_path(tmp_path):
    import adaptconv

    model = adaptconv.create_model("rednet26", channels=(16, 32, 64, 128), num_classes=3)
    atomic_save({"state_dict": model.state_dict(), **_training_keys()}, tmp_path / "run.pth")
    flipped, member = _flip_a_data_bit(tmp_path / "run.pth", tmp_path)
    with pytest.raises(CheckpointError, match=f"is damaged: the data of {member} does not match the checksum"):
        load_training_checkpoint(flipped)
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        adaptconv.load_official_checkpoint(model, flipped)
    assert training_record(flipped) is None


def _training_keys() -> dict:
    return {"arch": "rednet26", "epoch": 1, "step": 0, "optimizer": {}, "args": {}}


def test_torch_refusal_of_unsafe_pickles_is_recognised_in_any_case(tmp_path, monkeypatch):
    """torch 2.14 says 'unsupported GLOBAL posix.system', older ones 'Unsupported global: GLOBAL ...'."""
    import os
    import pickle

    from adaptconv.models.checkpoint import read_torch_file

    torch.save({"a": torch.ones(1), "b": os.system}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"objects besides tensors \(such as posix\.system\)"):
        read_torch_file(tmp_path / "evil.pth")
    for said in ("Trying to load unsupported GLOBAL posix.system whose module posix is blocked.",
                 "Unsupported global: GLOBAL posix.system was not an allowed global by default."):  # fmt: skip
        monkeypatch.setattr(
            torch, "load", lambda *a, said=said, **k: (_ for _ in ()).throw(pickle.UnpicklingError(said))
        )
        with pytest.raises(CheckpointError, match=r"such as posix\.system\).*unsafe unpickling"):
            read_torch_file(tmp_path / "evil.pth")


def test_checkpoint_files_follow_the_umask(tmp_path):
    import os

    previous = os.umask(0o027)
    try:
        atomic_save({"a": torch.ones(1)}, tmp_path / "c.pth")
    finally:
        os.umask(previous)
    assert (tmp_path / "c.pth").stat().st_mode & 0o777 == 0o640
