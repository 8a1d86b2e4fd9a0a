"""The command line: list and info."""

from __future__ import annotations

import subprocess
import sys

from adaptconv.cli.main import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ["scnet50", "scnet101_v1d", "rednet152"])
    assert "77.81" in out and "none released" in out
    assert main(["list", "rednet*"]) == 0
    assert "scnet" not in capsys.readouterr().out


def test_info_counts_at_the_requested_size(capsys):
    assert main(["info", "rednet26", "scnet50", "--input-size", "224", "224"]) == 0
    out = capsys.readouterr().out
    assert "1.685G" in out and "3.925G" in out and "9.23M" in out and "25.56M" in out
    assert main(["info", "rednet26", "--input-size", "112", "112"]) == 0
    assert "0.436G" in capsys.readouterr().out  # a quarter of the pixels, plus the same classifier


def test_bad_arguments(capsys):
    assert main(["info", "resnet9000"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["info", "rednet26", "--input-size", "16", "16"]) == 2


def test_console_entry_point():
    res = subprocess.run([sys.executable, "-m", "adaptconv.cli.main", "list"], capture_output=True, text=True)
    assert res.returncode == 0 and "rednet50" in res.stdout
