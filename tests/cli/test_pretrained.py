"""``--pretrained [official|PATH|URL]`` means one thing in train, validate, export and visualize; left out, the
weights are random (and visualize says so)."""

from __future__ import annotations

import argparse

import pytest
import torch
from clirun import run

from adaptconv.cli.arguments import add_pretrained_argument


def _parse(argv):
    p = argparse.ArgumentParser()
    add_pretrained_argument(p)
    return p.parse_args(argv).pretrained


def test_one_rule(capsys):
    assert _parse([]) is None and _parse(["--pretrained"]) is True and _parse(["--pretrained", "official"]) is True
    assert (
        _parse(["--pretrained", "w.pth"]) == "w.pth"
        and _parse(["--pretrained", "https://x/w.pth"]) == "https://x/w.pth"
    )
    assert _parse(["--pretrained", "none"]) is None
    assert "'--pretrained none' is deprecated" in capsys.readouterr().err


@pytest.mark.parametrize("spelling", [["--pretrained", "official"], ["--pretrained"]])
@pytest.mark.parametrize("command", ["train", "validate", "export"])
def test_official_means_the_official_weights_everywhere(tiny, tmp_path, command, spelling):
    """scnet101_v1d has no official weights: the message proves 'official' was not taken for a file name."""
    data = ["--dataset", f"npz:{tiny}", "-a", "scnet101_v1d", "-j", "0"]
    argv = {"train": ["train", *data, "--epochs", "1", "--output", str(tmp_path / "o")],
            "validate": ["validate", *data],
            "export": ["export", "scnet101_v1d", "-o", str(tmp_path / "m.onnx")]}[command]  # fmt: skip
    result = run([*argv, *spelling], check=False)
    assert result.returncode in (1, 2) and "released no pretrained weights" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_path_is_a_path_everywhere(tiny, finished, tmp_path):
    torch.save(torch.load(finished / "model_best.pth", weights_only=True)["state_dict"], tmp_path / "w.pth")
    result = run(["train", "--dataset", f"npz:{tiny}", "-a", "rednet26", "--width", "0.25", "--epochs", "1", "-b",
                  "8", "-j", "0", "--pretrained", str(tmp_path / "w.pth"), "--output",
                  str(tmp_path / "o")])  # fmt: skip
    assert "done:" in result.stdout
