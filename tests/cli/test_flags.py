"""Flags are checked when they are parsed: a bad number is one line and exit 2, before any data or model is read."""

from __future__ import annotations

import pytest
from clirun import run

BAD = [
    (["-b", "0"], "argument -b/--batch-size: must be an integer >= 1, got 0"),
    (["-b", "-4"], "argument -b/--batch-size: must be an integer >= 1, got -4"),
    (["-j", "-1"], "argument -j/--workers: must be an integer >= 0, got -1"),
    (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
    (["--epochs", "-1"], "argument --epochs: must be an integer >= 1, got -1"),
    (["--img-size", "0"], "argument --img-size: must be an integer >= 1, got 0"),
    (["--lr", "nan"], "argument --lr/--learning-rate: must be a finite number > 0"),
    (["--lr", "inf"], "argument --lr/--learning-rate: must be a finite number > 0"),
    (["--lr", "1e39"], "<= 3.40282e+38, got 1e+39"),
    (["--momentum", "1.5"], "argument --momentum: must be a finite number >= 0 and < 1, got 1.5"),
    (["--label-smoothing", "-0.1"], "argument --label-smoothing: must be a finite number >= 0 and <= 1"),
    (["--width", "0"], "argument --width: must be a finite number > 0, got 0.0"),
]


def test_bad_numbers_are_refused_at_parse_time(tmp_path):
    for flags, message in BAD:
        result = run(["train", *flags, "--output", str(tmp_path / "o")], check=False)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (flags, result.stdout, result.stderr)
        assert lines[0].startswith("adaptconv train: error: ") and message in lines[0], (flags, result.stderr)
        assert len(lines) == 2 and "--help" in lines[1], (flags, result.stderr)
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["validate", "benchmark"])
def test_other_commands_check_their_numbers_too(command):
    flags = ["-b", "0"] if command == "validate" else ["--repeats", "0"]
    result = run([command, *flags], check=False)
    assert result.returncode == 2 and "must be" in result.stderr and "Traceback" not in result.stderr
