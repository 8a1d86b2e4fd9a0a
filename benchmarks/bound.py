"""The command of the bound scripts (``free_aggregation.py``, ``free_calibration.py``): a model against its ResNet,
then again with one part of it made (nearly) free, level by level.

Each level is a switch that replaces part of the package for the rest of the process (the scripts' docstrings say
what each replaces) and the model variant it applies to.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

from adaptconv.benchmark import Setting, measure, run
from adaptconv.benchmark.harness import ratio

from . import flags, record

__all__ = ["Level", "main", "parser"]

#: a level: (the switch that makes it free, the model variant suffix it applies to, e.g. "+fused")
Level = tuple[Callable[[], object], str]


def parser(script: str, description: str, models: list[str], modes: list[str],
           levels: dict[str, Level]) -> argparse.ArgumentParser:  # fmt: skip
    """``--models``, ``--task``, ``--mode``, ``--levels``, ``--repeats``, ``--output`` and ``--name``."""
    ap = flags.parser(script, description, models=models, task=["train", "inference"], mode=modes, repeats=20)
    ap.add_argument("--levels", nargs="+", default=list(levels), choices=levels, help="run in this order")
    return ap


def main(args: argparse.Namespace, levels: dict[str, Level], cpu: bool = False) -> None:
    """Measure the models and their baselines as ``adaptconv benchmark`` does (on a GPU bf16 autocast,
    channels_last, batch 128 train / 256 inference; with ``cpu`` and no GPU, fp32 at batch 8 / 1), then, level by
    level in ``levels``' order, switch the level on (the switches stay on) and measure each model again (with the
    level's variant suffix). Prints a table and writes the record (``record.py``)."""
    device = flags.default_device()
    if device == "cpu" and not cpu:
        raise SystemExit(f"benchmarks.{args.script} replaces CUDA kernels: it needs a GPU")
    gpu = device == "cuda"
    batches = dict(train=128, inference=256) if gpu else dict(train=8, inference=1)
    dtype, layout = ("bf16", "channels_last") if gpu else ("fp32", "nchw")
    todo = [Setting(m, t, batches[t], dtype, layout, mode)
            for m in args.models for t in args.task for mode in args.mode]  # fmt: skip
    rows = run(todo, device, repeats=args.repeats)
    chosen = [level for level in levels if level in args.levels]  # in the levels' order: the switches stay on
    for level in chosen:
        switch, suffix = levels[level]
        switch()
        for row, s in zip(rows, todo, strict=True):
            print(f"measuring {s.model} {s.task} {s.mode} with free {level}")
            free = measure(replace(s, model=s.model + suffix), device, args.repeats)
            row.update({f"free_{level}_{k}": free[k] for k in ("ms", "img_s", "peak_mib", "error")})
            row[f"free_{level}_speed_ratio"] = ratio(free["img_s"], row["baseline_img_s"])
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print(record.markdown_table(
        ["model", "task", "mode", "baseline img/s", "model img/s (x)", *(f"free {lv} img/s (x)" for lv in chosen)],
        [[r["model"], r["task"], r["mode"], fmt(r["baseline_img_s"], ".0f"),
          f"{fmt(r['img_s'], '.0f')} ({fmt(r['speed_ratio'], '.2f')})",
          *(f"{fmt(r[f'free_{lv}_img_s'], '.0f')} ({fmt(r[f'free_{lv}_speed_ratio'], '.2f')})" for lv in chosen)]
         for r in rows]))  # fmt: skip
    print("written to", record.write(args, device, rows, dtype=dtype, layout=layout))
