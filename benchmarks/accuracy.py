"""One run of the accuracy study: ``adaptconv train`` to its end, and a record of it in benchmarks/results/accuracy/.

    python -m benchmarks.accuracy --models resnet18 --seed 0 -- --dataset npz:PATH --recipe cifar [more train flags]

Runs ``adaptconv train ARGS -a MODEL --seed SEED --output RUN_DIR`` in a fresh process for each model, then writes
``<output>/accuracy-<model>-seed<seed>[-<name>]-<device>.json``: the record's usual head (device, versions, date,
this command, commit) plus the train command, the run's resolved settings (from its checkpoint), the per-epoch
summary as rows, the final and best top-1/top-5, the mean training img/s and the GPU minutes (training and
evaluation wall time of all epochs).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from adaptconv.engine.loggers import read_summary

from . import flags, record

RESULTS = flags.RESULTS / "accuracy"


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("accuracy", __doc__, models=["resnet18"], device=flags.default_device())
    ap.set_defaults(output=RESULTS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=Path("output/accuracy"), help="where the runs' folders go")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the flags of adaptconv train")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    train_args = [a for a in args.train_args if a != "--"]
    for model in args.models:
        run_dir = args.run_dir / f"{model}-seed{args.seed}{'-' + args.name if args.name else ''}"
        command = ["adaptconv", "train", *train_args, "-a", model, "--seed", str(args.seed), "--output", str(run_dir)]
        if (run_dir / "checkpoint.pth").exists():  # an interrupted run: continue it
            command = ["adaptconv", "train", "--resume", str(run_dir / "checkpoint.pth")]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "adaptconv.cli.main", *command[1:]], check=True)
        wall = time.perf_counter() - started
        rows = read_summary(run_dir / "summary.csv")
        settings = torch.load(run_dir / "checkpoint.pth", map_location="cpu", weights_only=True)["args"]
        settings = {k: v for k, v in settings.items() if k not in ("output", "resume", "data", "dataset")}
        best = max(rows, key=lambda r: r["top1"])
        rates = [r["img_per_s"] for r in rows if r.get("img_per_s")]
        facts = dict(
            train_command=shlex.join(command), model=model, seed=args.seed, settings=settings,
            final_top1=rows[-1]["top1"], final_top5=rows[-1]["top5"], best_top1=best["top1"], best_epoch=best["epoch"],
            train_img_per_s=round(sum(rates) / len(rates), 1) if rates else None,
            gpu_minutes=round(wall / 60, 2) if args.device == "cuda" else None, wall_seconds=round(wall, 1),
        )  # fmt: skip
        path = record.write(args, args.device, rows, parts=(model, f"seed{args.seed}"), **facts)
        print(f"{model} seed {args.seed}: top-1 {facts['final_top1']:.2f}% -> {path}", flush=True)


if __name__ == "__main__":
    main()
