"""Runs of the accuracy study: ``adaptconv train`` to its end, and a record of each in benchmarks/results/accuracy/.

    python -m benchmarks.accuracy --models resnet26 rednet26 --seeds 0 1 2 --role comparison --name cifar-30ep \\
        -- --dataset npz:PATH --recipe cifar --epochs 30 [more train flags]

For each seed, then each model: ``adaptconv train ARGS -a MODEL --seed SEED --output RUN_DIR`` in a fresh process,
then at once ``<output>/accuracy-<model>-seed<seed>[-<name>]-<device>.json``: the record's usual head (device,
versions, date, this command, commit) plus the run's role in the study (``--role``), the train command, its
resolved settings (from its checkpoint), the per-epoch summary as rows, the final and best top-1/top-5, the mean
training img/s and the GPU minutes (the run's wall time: start-up, training and evaluation of all epochs).

A run whose record exists already, in ``--output`` or in benchmarks/results/accuracy/, is skipped, and a run folder
with a checkpoint but no record is resumed: an interrupted call can be issued again as it was. ``--deadline S``
starts no run that would end after S seconds: a run is expected to take as long as its model's longest run with
this ``--name`` (a record in those folders), else as the longest run of this call so far.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from adaptconv.engine.loggers import read_summary

from . import flags, record

RESULTS = flags.RESULTS / "accuracy"
#: a run's part in the study: the recipe's sanity check, a check of what the anchor found, the comparison of the
#: models (same recipe, several seeds), one changed option (one seed)
ROLES = ("anchor", "diagnosis", "comparison", "ablation")


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("accuracy", __doc__, models=["resnet18"], device=flags.default_device())
    ap.set_defaults(output=RESULTS)
    ap.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0], metavar="SEED")
    ap.add_argument("--role", choices=ROLES, default="comparison", help="the runs' part in the study")
    ap.add_argument("--run-dir", type=Path, default=Path("output/accuracy"), help="where the runs' folders go")
    ap.add_argument("--deadline", type=float, default=None, metavar="S",
                    help="start no run expected to end after S seconds")  # fmt: skip
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the flags of adaptconv train")
    return ap


def train(args: argparse.Namespace, model: str, seed: int, train_args: list[str]) -> dict:
    """One run of ``adaptconv train`` to its end (continued where its folder has a checkpoint): its record's facts
    and rows."""
    run_dir = args.run_dir / f"{model}-seed{seed}{'-' + args.name if args.name else ''}"
    command = ["adaptconv", "train", *train_args, "-a", model, "--seed", str(seed), "--output", str(run_dir)]
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
    return dict(
        role=args.role, train_command=shlex.join(command), model=model, seed=seed, settings=settings,
        final_top1=rows[-1]["top1"], final_top5=rows[-1]["top5"], best_top1=best["top1"], best_epoch=best["epoch"],
        train_img_per_s=round(sum(rates) / len(rates), 1) if rates else None,
        gpu_minutes=round(wall / 60, 2) if args.device == "cuda" else None, wall_seconds=round(wall, 1), rows=rows,
    )  # fmt: skip


def expected_seconds(args: argparse.Namespace, model: str) -> float | None:
    """How long a run of ``model`` takes: the longest of its records with this ``--name`` (any seed), or None."""
    pattern = record.path(args, args.device, (model, "seed*")).name
    files = {p for folder in (Path(args.output), RESULTS) for p in folder.glob(pattern)}
    walls = [json.loads(p.read_text()).get("wall_seconds") or 0 for p in files]
    return max(walls) if walls else None


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    train_args = [a for a in args.train_args if a != "--"]
    started, took = time.perf_counter(), {}  # model -> seconds of its run in this call
    for seed in args.seeds:
        for model in args.models:
            parts = (model, f"seed{seed}")
            name = record.path(args, args.device, parts).name
            done = [d / name for d in (Path(args.output), RESULTS) if (d / name).exists()]
            if done:
                print(f"{model} seed {seed}: done already ({done[0]})", flush=True)
                continue
            if args.deadline is not None:
                left = args.deadline - (time.perf_counter() - started)
                expected = took.get(model, expected_seconds(args, model))
                expected = max(took.values(), default=0.0) if expected is None else expected
                if expected >= left:
                    print(f"{model} seed {seed}: not started (expected {expected:.0f} s, {left:.0f} s left of "
                          f"--deadline {args.deadline:g})", flush=True)  # fmt: skip
                    continue
            facts = train(args, model, seed, train_args)
            took[model] = facts["wall_seconds"]
            path = record.write(args, args.device, facts.pop("rows"), parts=parts, **facts)
            print(f"{model} seed {seed}: top-1 {facts['final_top1']:.2f}% -> {path}", flush=True)


if __name__ == "__main__":
    main()
