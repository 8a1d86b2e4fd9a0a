"""Time the README's main job, ``adaptconv train`` with no arguments, and record its accuracy.

    python -m benchmarks.default_run [--name SUFFIX] [-- TRAIN_ARGS ...]   # writes results/default_run-<device>.json

Runs the command as a user would (a fresh process, default settings, every core of the machine) and reports the
wall time of the whole command, start-up included, with the per-epoch results from its ``summary.csv`` (the rows).
Arguments after ``--`` go to ``adaptconv train``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adaptconv.engine.loggers import read_summary

from . import flags, record


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("default_run", __doc__)
    ap.add_argument("train_args", nargs="*", metavar="TRAIN_ARGS", help="arguments of adaptconv train (after --)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "adaptconv.cli.main", "train", "--output", str(out),
                                 *args.train_args], capture_output=True, text=True)  # fmt: skip
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(result.stdout + result.stderr)
        rows = read_summary(out / "summary.csv")
    train = " ".join(["adaptconv train", *args.train_args])
    path = record.write(args, flags.default_device(), rows, train_command=train, wall_seconds=round(seconds, 1),
                        top1=rows[-1]["top1"])  # fmt: skip
    print(f"{train}: {seconds:.0f} s, top-1 {rows[-1]['top1']:.2f}% ({len(rows)} epochs) -> {path}")


if __name__ == "__main__":
    main()
