"""``adaptconv train`` as 2 CPU processes over gloo, as a user launches it: torchrun and the classic
``--multiprocessing-distributed`` against one process with the same global batch, synchronised BN on and off, device
data sharded over the ranks, and one rank killed mid-epoch, then resumed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clirun import ENV, STEPS_PER_EPOCH
from clirun import run as run_cli
from clirun import train_args as args

from adaptconv.engine.loggers import read_summary
from benchmarks.multi_gpu import checkpoint_differences, free_port, rank_pid
from benchmarks.multi_gpu import without_timing as timing_removed

CLI = [sys.executable, "-m", "adaptconv.cli.main"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
            "adaptconv.cli.main"]  # fmt: skip
#: one epoch at a small learning rate: the two layouts sum in another order, and training amplifies that rounding;
#: this keeps it near float precision (after one step they agree to 1e-7)
SHORT = ("--epochs", "1", "--lr", "0.01")
#: the largest relative weight difference that rounding may give over SHORT (measured: 3e-5)
ROUNDING = 1e-3


def spawn_args(port: int) -> list[str]:
    """The classic script's flags for one node of 2 CPU processes."""
    return ["--multiprocessing-distributed", "--nproc-per-node", "2", "--world-size", "1", "--rank", "0",
            "--dist-url", f"tcp://127.0.0.1:{port}", "--cpu"]  # fmt: skip


def launch(launcher: str, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """``adaptconv ARGV`` as 2 processes: ``torchrun`` or ``spawn`` (``--multiprocessing-distributed``)."""
    if launcher == "torchrun":
        return run_cli(argv, check, cli=TORCHRUN)
    return run_cli([*argv, *spawn_args(free_port())], check, cli=CLI)


def relative_differences(a: Path, b: Path) -> dict[str, float]:
    return checkpoint_differences(a / "checkpoint.pth", b / "checkpoint.pth")


def without_timing(run: Path) -> list[dict]:
    return timing_removed(read_summary(run / "summary.csv"))


@pytest.fixture(scope="module")
def one_process(tiny, tmp_path_factory) -> Path:
    """One process with batch 8 for SHORT: the reference of the 2-process runs (batch 4 each)."""
    out = tmp_path_factory.mktemp("one") / "run"
    run_cli(args(tiny, out, *SHORT), cli=CLI)
    return out


def assert_equal_to_one_process(one: Path, two: Path) -> None:
    differences = relative_differences(one, two)
    worst = max(differences, key=differences.get)
    assert differences[worst] <= ROUNDING, f"{worst} differs by {differences[worst]:.2g}"
    a, b = read_summary(one / "summary.csv")[0], read_summary(two / "summary.csv")[0]
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    assert b["top1"] == a["top1"] and b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3)
    assert torch.load(two / "checkpoint.pth", weights_only=True)["world_size"] == 2


@pytest.mark.parametrize("launcher", ["torchrun", "spawn"])
def test_two_processes_equal_one_process(launcher, tiny, one_process, tmp_path):
    """Batch 4 on each of 2 processes with synchronised BN == batch 8 in one process, whichever way they start."""
    result = launch(launcher, args(tiny, tmp_path / "two", *SHORT, "--sync-bn"))
    assert result.stdout.count("done:") == 1, "only rank 0 reports"
    assert "on 2 x cpu" in result.stdout
    assert_equal_to_one_process(one_process, tmp_path / "two")


def test_without_sync_bn_each_rank_normalises_its_own_half(tiny, one_process, tmp_path):
    """Without --sync-bn each rank's BN sees its 4 images, not the step's 8: the run is another (sound) run. Its BN
    statistics (rank 0's, which DDP gives every rank) differ from the one process's far beyond rounding."""
    launch("torchrun", args(tiny, tmp_path / "two", *SHORT))
    differences = relative_differences(one_process, tmp_path / "two")
    running = {k: v for k, v in differences.items() if "running_" in k}
    assert running and max(running.values()) > 30 * ROUNDING, max(running.values())
    a, b = read_summary(one_process / "summary.csv")[0], read_summary(tmp_path / "two" / "summary.csv")[0]
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.1)


def test_device_data_over_two_processes_equals_one_process(tiny, tmp_path):
    """--device-data: each rank builds its half of every step on its device (DeviceLoader's shard), as one process
    builds the whole step."""
    run_cli(args(tiny, tmp_path / "one", *SHORT, "--device-data"), cli=CLI)
    launch("torchrun", args(tiny, tmp_path / "two", *SHORT, "--device-data", "--sync-bn"))
    assert_equal_to_one_process(tmp_path / "one", tmp_path / "two")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process in /proc (Linux)")
def test_a_rank_killed_mid_epoch_resumes_bit_identically(tiny, tmp_path):
    """SIGKILL to rank 1 at a random step of 2 epochs; torchrun ends the other rank; the same torchrun command with
    --resume ends with the weights, momentum and per-epoch results of the uninterrupted 2-process run, bit for bit."""
    every = ("--checkpoint-every-steps", "1")
    launch("torchrun", args(tiny, tmp_path / "a", *every))
    out = tmp_path / "b"
    kill_at = random.Random().randint(2, 2 * STEPS_PER_EPOCH - 2)
    proc = subprocess.Popen(TORCHRUN + args(tiny, out, *every), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    seen = 0
    for line in proc.stdout:
        if " step " in line and ": loss " in line:
            seen += 1
            if seen == kill_at:
                os.kill(rank_pid(proc.pid, 1), signal.SIGKILL)
                break
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) != 0, f"the run ended before step {kill_at}:\n{rest}"
    assert "done:" not in rest
    # rank 0 logs a step after the checkpoint of that step, which both ranks took part in
    assert torch.load(out / "checkpoint.pth", weights_only=True)["global_step"] >= kill_at - 1
    launch("torchrun", args(tiny, out, *every, "--resume", str(out / "checkpoint.pth")))
    differences = relative_differences(tmp_path / "a", out)
    assert not [k for k, v in differences.items() if v != 0], f"killed at step {kill_at}"
    assert without_timing(out) == without_timing(tmp_path / "a")
