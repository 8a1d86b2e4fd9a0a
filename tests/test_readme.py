"""The README stays true: its two set-up commands exist, CI runs the test one, its model table is measured."""

from __future__ import annotations

import re
import subprocess
import sys
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


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", README, re.S)


@pytest.fixture
def weights_at_hand(tmp_path, monkeypatch):
    """What the README's examples load, without a network: ``rednet50.pth`` in the working folder (random weights in
    our key names) and, for ``pretrained=True``, official-format files that the download step returns."""
    import torch

    import adaptconv.models.checkpoint as checkpoint

    monkeypatch.chdir(tmp_path)
    torch.save(adaptconv.create_model("rednet50").state_dict(), "rednet50.pth")

    def download(url, file_name, sha256_prefix, cache_dir):  # the official file of the model the URL names
        name = next(n for n in adaptconv.list_models() if adaptconv.get_pretrained_config(n).url == url)
        path = tmp_path / f"{name}-official.pth"
        torch.save(adaptconv.official_state_dict(adaptconv.create_model(name)), path)
        return str(path)

    monkeypatch.setattr(checkpoint, "_download", download)


@pytest.mark.parametrize("block", range(len(_python_blocks())), ids=lambda i: f"python-block-{i}")
def test_python_examples_run(block, weights_at_hand):
    exec(compile(_python_blocks()[block], f"README.md python block {block}", "exec"), {})


COMMANDS = re.search(r"^Command line: (.*?)\n\n", README, re.S | re.M).group(1)


@pytest.mark.parametrize("command", sorted(set(re.findall(r"`adaptconv (\w+)", COMMANDS))))
def test_every_command_of_the_readme_answers(command):
    result = subprocess.run([sys.executable, "-m", "adaptconv.cli.main", command, "--help"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and f"usage: adaptconv {command}" in result.stdout, result.stderr


def test_list_and_info_run_as_the_readme_shows():
    out = subprocess.run([sys.executable, "-m", "adaptconv.cli.main", "list"], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert all(name in out for name in adaptconv.list_models())
    out = subprocess.run([sys.executable, "-m", "adaptconv.cli.main", "info", "rednet26", "--input-size", "64", "64"],
                         capture_output=True, text=True, timeout=120, check=True).stdout  # fmt: skip
    assert "rednet26" in out and "MACs@64x64" in out


def test_cpu_only_install_is_shown():
    """The default wheels bring ~3 GB of CUDA libraries that a CPU-only machine never uses."""
    assert "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu" in README


def test_pretrained_is_described_once_for_every_command():
    assert README.count("`--pretrained [official|PATH|URL]` means the same in `train`, `validate`, `export` and") == 1
    assert "--pretrained PATH|URL|official" not in README


def test_multi_gpu_commands_are_train_commands():
    """The README's torchrun and classic multi-GPU command lines parse as ``adaptconv train`` with the same run."""
    import shlex

    from adaptconv.cli.main import build_parser

    lines = _block_after("Processes:").splitlines()
    parsed = [build_parser().parse_args(shlex.split(line.split("adaptconv.cli.main", 1)[-1].split("adaptconv", 1)[-1]))
              for line in lines]  # fmt: skip
    assert len(parsed) == 2 and lines[0].startswith("torchrun --standalone --nproc_per_node=")
    same = ("data", "arch", "recipe", "batch_size", "sync_bn")
    assert [getattr(parsed[0], k) for k in same] == [getattr(parsed[1], k) for k in same]
    assert parsed[1].multiprocessing_distributed and parsed[1].dist_url.startswith("tcp://")
