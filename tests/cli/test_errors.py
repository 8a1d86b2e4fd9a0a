"""Errors of the command line, as a user meets them: the whole message, the file named, what to do; no traceback,
no advice that is wrong or unsafe."""

from __future__ import annotations

import os
import shutil
import struct
import zipfile

import pytest
import torch
from clirun import run

from adaptconv.engine.checkpoint import atomic_save


def _error(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def run_dir(finished, tmp_path_factory):
    return shutil.copytree(finished, tmp_path_factory.mktemp("cli") / "run")


def test_a_misfit_prints_the_whole_list_not_its_last_line(tiny, run_dir):
    err = _error(run(["validate", "--dataset", f"npz:{tiny}", "--checkpoint", str(run_dir / "model_best.pth"),
                      "--num-classes", "5", "-j", "0"], check=False))  # fmt: skip
    assert "fc.weight: checkpoint (4, 512) vs model (5, 512)" in err and str(run_dir / "model_best.pth") in err
    assert "Is it a checkpoint of this model variant" in err


def test_validate_without_data_uses_the_runs_own(run_dir):
    """No DIR: the checkpoint's model and data (it used to build the default data's model and fail to load)."""
    result = run(["validate", "--checkpoint", str(run_dir / "model_best.pth"), "-j", "0"])
    assert "data: the run's own" in result.stdout and "top-1" in result.stdout


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("rednet26.onnx", b"\x08\x08\x12\x07pytorch\x1a\x032.1" + bytes(200), "it is an ONNX model"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "it is a PNG image"),
        ("notes.txt", b"epochs: 90\nlr: 0.1\n", "it is a text file"),
        ("page.pth", b"<!DOCTYPE html><html><body>Sign in</body></html>", "it is a web page (HTML)"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "resume"])
def test_a_file_that_is_not_a_checkpoint_is_named_and_said_what_it_is(tiny, tmp_path, command, name, content, said):
    path = tmp_path / name
    path.write_bytes(content)
    if command == "validate":
        argv = ["validate", "--dataset", f"npz:{tiny}", "-a", "rednet26", "--checkpoint", str(path)]
    else:
        argv = ["train", "--dataset", f"npz:{tiny}", "--resume", str(path), "--output", str(tmp_path / "o")]
    err = _error(run(argv, check=False))
    assert f"{path} is not a readable PyTorch checkpoint: {said}" in err, err
    for advice in ("weights_only` set to `False", "will likely succeed", "Check the documentation", "KeyError"):
        assert advice not in err, err
    assert path.read_bytes() == content


def test_a_flipped_bit_in_the_tensor_data_is_refused(tiny, run_dir, tmp_path):
    path = tmp_path / "flipped.pth"
    data = bytearray((run_dir / "model_best.pth").read_bytes())
    with zipfile.ZipFile(run_dir / "model_best.pth") as archive:
        member = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size > 64)
    name_len, extra_len = struct.unpack("<HH", data[member.header_offset + 26 : member.header_offset + 30])
    start = member.header_offset + 30 + name_len + extra_len  # the member's data, after its local header
    data[start + 17] ^= 0x04
    path.write_bytes(bytes(data))
    for argv in (["validate", "--dataset", f"npz:{tiny}", "--checkpoint", str(path), "-j", "0"],
                 ["train", "--resume", str(path), "--output", str(tmp_path / "o")]):  # fmt: skip
        err = _error(run(argv, check=False))
        assert f"{path} is damaged: the data of {member.filename} does not match the checksum" in err, err


def test_a_file_needing_unsafe_unpickling_is_explained(tiny, tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"fc.weight": torch.zeros(4, 512), "note": os.system}, path)
    err = _error(run(["validate", "--dataset", f"npz:{tiny}", "-a", "rednet26", "--checkpoint", str(path)],
                     check=False))  # fmt: skip
    assert f"{path} stores Python objects besides tensors (such as posix.system)" in err, err
    assert "unsafe unpickling, which could run any code" in err and "weights_only=False" in err


def test_a_flipped_key_name_is_a_clear_error(tiny, run_dir, tmp_path):
    ckpt = torch.load(run_dir / "checkpoint.pth", weights_only=True)
    state = ckpt["state_dict"]
    state["layer1.0.conv1.weigjt"] = state.pop("layer1.0.conv1.weight")
    atomic_save(ckpt, tmp_path / "checkpoint.pth")
    err = _error(run(["train", "--resume", str(tmp_path / "checkpoint.pth"), "--epochs", "3"], check=False))
    assert "does not fit" in err and "layer1.0.conv1.weight" in err and "layer1.0.conv1.weigjt" in err, err
    torch.save(state, tmp_path / "plain.pth")
    err = _error(run(["validate", "--dataset", f"npz:{tiny}", "-a", "rednet26", "--width", "0.25", "--checkpoint",
                      str(tmp_path / "plain.pth"), "-j", "0"], check=False))  # fmt: skip
    assert "missing (1 key the model needs)" in err and "layer1.0.conv1.weigjt" in err, err


def test_validate_finds_the_model_of_plain_weights(tiny, run_dir, tmp_path):
    """Plain weights and no -a: the model comes from the keys and shapes (the default resnet18 could not load them)."""
    torch.save(torch.load(run_dir / "model_best.pth", weights_only=True)["state_dict"], tmp_path / "plain.pth")
    result = run(["validate", "--dataset", f"npz:{tiny}", "--checkpoint", str(tmp_path / "plain.pth"), "-j", "0"])
    assert "model: -a rednet26 --width 0.25 --num-classes 4" in result.stdout and "top-1" in result.stdout
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "other.pth")
    err = _error(run(["validate", "--dataset", f"npz:{tiny}", "--checkpoint", str(tmp_path / "other.pth")],
                     check=False))  # fmt: skip
    assert "fit no adaptconv model" in err and "-a ARCH" in err
