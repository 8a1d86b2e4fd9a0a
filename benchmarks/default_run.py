"""Time the README's main job, ``adaptconv train`` with no arguments, and record its accuracy.

    python benchmarks/default_run.py            # writes benchmarks/results/default_run-<machine>.json

Runs the command as a user would (a fresh process, default settings, every core of the machine) and reports the
wall time of the whole command, start-up included, with the per-epoch results from its ``summary.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from adaptconv.benchmark.timing import device_name
from adaptconv.engine.loggers import read_summary

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="cpu", help="suffix of the result file")
    p.add_argument("extra", nargs="*", help="extra arguments for adaptconv train (after --)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "adaptconv.cli.main", "train", "--output", str(out),
                                 *args.extra], capture_output=True, text=True)  # fmt: skip
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(result.stdout + result.stderr)
        rows = read_summary(out / "summary.csv")
    record = dict(
        command="adaptconv train " + " ".join(args.extra),
        wall_seconds=round(seconds, 1),
        top1=rows[-1]["top1"],
        epochs=rows,
        cpu=device_name("cpu"),
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"default_run-{args.name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{record['command']}: {seconds:.0f} s, top-1 {record['top1']:.2f}% ({len(rows)} epochs; "
          f"{record['cores']} cores) -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
