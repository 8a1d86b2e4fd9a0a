"""The README stays true: its two set-up commands exist, CI runs the test one, its model table is measured."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import adaptconv
from adaptconv.cli.main import model_info

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _block_after(marker: str) -> str:
    after = README.split(marker, 1)[1]
    return re.search(r"```\n(.*?)\n```", after, re.S).group(1).strip()


def test_two_setup_commands_and_ci_runs_the_test_one():
    main_cmd, test_cmd = _block_after("<!-- main-command -->"), _block_after("<!-- test-command -->")
    assert "\n" not in main_cmd and "\n" not in test_cmd
    assert "pip install" in main_cmd and "pytest" in test_cmd
    # .ci/run extracts exactly this command.
    script = (ROOT / ".ci" / "run").read_text()
    awk = re.search(r"cmd=\$\((awk .*?) README.md\)", script).group(1)
    extracted = subprocess.run(["bash", "-c", f"{awk} README.md"], cwd=ROOT, capture_output=True, text=True)
    assert extracted.stdout.strip() == test_cmd


MODEL_ROWS = re.findall(r"^\| ((?:scnet|rednet)\w*) \| ([\d.]+)M \| ([\d.]+)G \|", README, re.M)


def test_model_table_lists_every_model():
    assert sorted(r[0] for r in MODEL_ROWS) == sorted(adaptconv.list_models())


@pytest.mark.parametrize("row", MODEL_ROWS)
def test_model_table_matches_measurement(row):
    name, params_m, gmacs = row
    info = model_info(name, (224, 224))
    assert f"{info['params'] / 1e6:.2f}" == params_m and f"{info['macs'] / 1e9:.3f}" == gmacs


def test_cpu_only_install_is_shown():
    """The default wheels bring ~3 GB of CUDA libraries that a CPU-only machine never uses."""
    assert "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu" in README


def test_pretrained_is_described_once_for_every_command():
    assert README.count("`--pretrained [official|PATH|URL]` means the same in `train`, `validate`, `export` and") == 1
    assert "--pretrained PATH|URL|official" not in README
