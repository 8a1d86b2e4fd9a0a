"""Running ``adaptconv`` as a user does, in a fresh process, on tiny data made by the test (importable as
``clirun``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

#: the installed console script (the one a user types), else the module it runs
SCRIPT = Path(sys.executable).with_name("adaptconv")
CONSOLE = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "adaptconv.cli.main"]
MODULE = [sys.executable, "-m", "adaptconv.cli.main"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true"}
STEPS_PER_EPOCH = 6  # 48 training images, batch 8


def make_tiny_npz(root: Path) -> Path:
    """4 classes of 16x16 grey images, each class a bright horizontal band at its own height, plus noise."""
    rng = np.random.default_rng(0)

    def split(n):
        y = (np.arange(n) % 4).astype(np.uint8)
        x = (rng.random((n, 16, 16)) * 60).astype(np.uint8)
        for i in range(n):
            x[i, 4 * y[i] : 4 * y[i] + 4] += 150
        return x, y

    (xt, yt), (xv, yv) = split(48), split(16)
    np.savez(root / "tiny.npz", x_train=xt, y_train=yt, x_test=xv, y_test=yv)
    return root / "tiny.npz"


def train_args(data: Path, output: Path, *extra: str) -> list[str]:
    """``adaptconv train`` of RedNet-26 at quarter width on ``data`` (an .npz file), 2 epochs of 6 steps."""
    return ["train", "--dataset", f"npz:{data}", "-a", "rednet26", "--width", "0.25", "-b", "8", "--epochs", "2",
            "--lr", "0.05", "--schedule", "cosine", "-j", "0", "-p", "1", "--output", str(output), *extra]  # fmt: skip


def run(argv: list[str], check: bool = True, cli: list[str] = CONSOLE, **kw) -> subprocess.CompletedProcess:
    """``adaptconv ARGV`` to its end; with ``check``, an AssertionError (with its output) unless it exits 0."""
    kw.setdefault("env", ENV)
    result = subprocess.run(cli + argv, capture_output=True, text=True, timeout=600, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def with_fault(fault: str) -> list[str]:
    """The command line of ``adaptconv`` in a process that first runs the Python code ``fault`` (which may replace a
    function to kill or signal the process at an exact point of the run)."""
    return [sys.executable, "-c", f"import sys\n{fault}\nfrom adaptconv.cli.main import main\nsys.exit(main())"]


def weights(path: Path) -> dict[str, torch.Tensor]:
    """The model weights and SGD momentum buffers of a training checkpoint."""
    ckpt = torch.load(path, weights_only=True)
    return {**{f"model.{k}": v for k, v in ckpt["state_dict"].items()},
            **{f"momentum.{k}": v["momentum_buffer"] for k, v in ckpt["optimizer"]["state"].items()}}  # fmt: skip
