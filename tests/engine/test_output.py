"""Output folders: one run at a time, never over another run's files; files as the user's umask makes them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clirun import ENV, run, train_args, with_fault

from adaptconv.engine.config import ConfigError
from adaptconv.engine.output import claim_output

ROOT = Path(__file__).resolve().parents[2]


def test_a_folder_holding_only_the_best_weights_is_not_overwritten(tiny, finished, tmp_path):
    out = tmp_path / "only_best"
    out.mkdir()
    shutil.copy(finished / "model_best.pth", out / "model_best.pth")
    before = (out / "model_best.pth").read_bytes()
    result = run(train_args(tiny, out, "--epochs", "1"), check=False)
    assert result.returncode == 1 and "already holds model_best.pth" in result.stderr, result.stderr
    assert (out / "model_best.pth").read_bytes() == before and not (out / "checkpoint.pth").exists()


def test_resuming_into_another_runs_folder_is_refused(tiny, finished, tmp_path):
    a, b = shutil.copytree(finished, tmp_path / "a"), shutil.copytree(finished, tmp_path / "b")
    before = (b / "checkpoint.pth").read_bytes()
    result = run(train_args(tiny, b, "--checkpoint-every-steps", "1", "--resume", str(a / "checkpoint.pth"), "--epochs",
                            "3"), check=False)  # fmt: skip
    assert result.returncode == 1 and f"--output {b} already holds checkpoint.pth" in result.stderr, result.stderr
    assert (b / "checkpoint.pth").read_bytes() == before


def test_two_runs_into_one_folder_at_once(tiny, tmp_path):
    """A second run started while the first writes into the same (empty) folder is refused; the first ends well."""
    out, go = tmp_path / "shared", tmp_path / "go"
    wait_before_evaluating = f"""
import pathlib, time
import adaptconv.engine.trainer as trainer
real_evaluate = trainer.evaluate
def evaluate(*args, **kwargs):
    while not pathlib.Path({str(go)!r}).exists():
        time.sleep(0.05)
    return real_evaluate(*args, **kwargs)
trainer.evaluate = evaluate
"""
    first = subprocess.Popen(with_fault(wait_before_evaluating) + train_args(tiny, out, "--epochs", "1"), env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        for line in first.stdout:
            if line.startswith("training "):
                break
        second = run(train_args(tiny, out, "--epochs", "1"), check=False)
    finally:
        go.touch()
    rest = first.stdout.read()
    assert first.wait(timeout=120) == 0, rest
    assert second.returncode == 1 and "another adaptconv train" in second.stderr, second.stdout + second.stderr
    assert f"(process {first.pid})" in second.stderr and "done:" in rest


def test_the_lock_is_held_by_one_process_and_freed_with_it(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom adaptconv.engine.output import claim_output\n"
         f"claim_output({str(tmp_path / 'o')!r})\nprint('locked', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ConfigError, match=f"another adaptconv train \\(process {holder.pid}\\)"):
        claim_output(tmp_path / "o")
    holder.communicate("")
    claim_output(tmp_path / "o").release()


def test_temporary_files_of_killed_writes_are_removed_under_the_lock(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    leftovers = [out / ".checkpoint.pth.1a2b3c4d.tmp", out / ".model_best.pth.5e6f7a8b.tmp", out / ".summary.csv.x.tmp"]
    for p in leftovers:
        p.write_bytes(b"half")
    (out / "notes.tmp").write_text("not ours")
    claim_output(out).release()
    assert not any(p.exists() for p in leftovers) and (out / "notes.tmp").exists()
    assert "removed 3 temporary file(s)" in capsys.readouterr().out


def test_checkpoints_follow_the_umask(finished):
    umask = os.umask(0)
    os.umask(umask)
    for name in ("checkpoint.pth", "model_best.pth", "summary.csv"):
        assert (finished / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    torch.load(finished / "checkpoint.pth", weights_only=True)


def test_run_outputs_are_ignored_by_git():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    for path in ("output/train/20260101-000000-rednet26/checkpoint.pth", "output/benchmark/models-cpu.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} is not ignored by git"
