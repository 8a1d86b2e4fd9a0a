"""``adaptconv --help`` and ``adaptconv list`` start fast: they import neither timm nor torchvision nor the models
(``python -m benchmarks.startup_time`` measures the time itself)."""

from __future__ import annotations

import pytest
from clirun import ENV, run

HEAVY = ("timm", "torchvision", "adaptconv.models.factory", "adaptconv.engine.trainer", "adaptconv.export")


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["train", "--help"], ["validate", "--help"]])
def test_help_and_list_import_nothing_heavy(argv):
    result = run(argv, env={**ENV, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import ")}
    assert "adaptconv.cli.main" in imported or "adaptconv.cli" in imported
    assert not [m for m in HEAVY if m in imported], sorted(m for m in imported if m.startswith(HEAVY))
    assert "usage: adaptconv" in result.stdout or "rednet50" in result.stdout
