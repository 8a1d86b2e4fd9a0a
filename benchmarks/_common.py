"""Helpers the benchmark scripts share: the aggregation implementations, the command lines and loops of the bound
scripts and of the step profilers, the output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from adaptconv.benchmark import MODES, Setting, environment, measure, run
from adaptconv.benchmark.harness import _ratio
from adaptconv.ops import involution_aggregate_unfold
from adaptconv.ops.involution import cuda
from adaptconv.ops.involution.reference import involution_aggregate_backward_reference, involution_aggregate_reference

RESULTS = Path(__file__).parent / "results"

#: implementations of the aggregation that can be timed: forward and (gradient, x, weight, conf) -> (gx, gw)
IMPLEMENTATIONS = {
    "reference": (involution_aggregate_reference, involution_aggregate_backward_reference),
    "triton": (cuda.aggregate_triton, cuda.aggregate_backward_triton),
    "unfold": (involution_aggregate_unfold, None),  # its backward is autograd's
}


def aggregation_step(impl: str, x: torch.Tensor, weight: torch.Tensor, conf: tuple, backward: bool) -> Callable:
    """A function that runs one forward (and backward) pass of ``impl`` on fixed inputs; the gradient is made here."""
    forward, backward_fn = IMPLEMENTATIONS[impl]
    with torch.no_grad():
        grad = torch.randn_like(forward(x, weight, *conf)) if backward else None

    def step() -> None:
        if not backward:
            with torch.no_grad():
                forward(x, weight, *conf)
        elif backward_fn is not None:
            forward(x, weight, *conf)
            backward_fn(grad, x, weight, *conf)
        else:
            xg, wg = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
            torch.autograd.grad(forward(xg, wg, *conf), (xg, wg), grad)

    return step


def write_results(name: str, device: str, meta: dict, rows: list[dict], out: Path = RESULTS) -> Path:
    """Write ``{meta, rows}`` to ``out/<name>-<device>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{device}.json"
    path.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    return path


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(str(v) for v in row) + " |" for row in rows)])


def bound_main(description: str, name: str, default_models: list[str], default_modes: list[str],
               levels: dict[str, tuple[Callable[[], object], str]], cpu: bool = False) -> None:  # fmt: skip
    """The command line of the bound scripts (free_aggregation.py, free_calibration.py): measure the models and
    their baselines as ``adaptconv benchmark`` does (on a GPU bf16 autocast, channels_last, batch 128 train / 256
    inference; with ``cpu`` and no GPU, fp32 at batch 8 / 1), then, level by level in ``levels``' order, switch the
    level on (``levels[level] = (switch, model suffix)``; the switches stay on) and measure each model again (with
    the suffix). Prints a table and writes benchmarks/results/<name><--name>-<device>.json."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=default_models)
    ap.add_argument("--tasks", nargs="+", default=["train", "inference"], choices=["train", "inference"])
    ap.add_argument("--modes", nargs="+", default=default_modes, choices=MODES)
    ap.add_argument("--levels", nargs="+", default=list(levels), choices=levels)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--name", default="", help="suffix of the results file's name")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not cpu:
        raise SystemExit(f"{name}.py replaces CUDA kernels: it needs a GPU")
    gpu = device == "cuda"
    batches = dict(train=128, inference=256) if gpu else dict(train=8, inference=1)
    dtype, layout = ("bf16", "channels_last") if gpu else ("fp32", "nchw")
    todo = [Setting(m, t, batches[t], dtype, layout, mode)
            for m in args.models for t in args.tasks for mode in args.modes]  # fmt: skip
    rows = run(todo, device, repeats=args.repeats)
    for level in [lv for lv in levels if lv in args.levels]:  # in the levels' order: the switches stay on
        switch, suffix = levels[level]
        switch()
        for row, s in zip(rows, todo, strict=True):
            print(f"measuring {s.model} {s.task} {s.mode} with free {level}")
            free = measure(replace(s, model=s.model + suffix), device, args.repeats)
            row.update({f"free_{level}_{k}": free[k] for k in ("ms", "img_s", "peak_mib", "error")})
            row[f"free_{level}_speed_ratio"] = _ratio(free["img_s"], row["baseline_img_s"])
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print(markdown_table(
        ["model", "task", "mode", "baseline img/s", "model img/s (x)",
         *(f"free {level} img/s (x)" for level in args.levels)],
        [[r["model"], r["task"], r["mode"], fmt(r["baseline_img_s"], ".0f"),
          f"{fmt(r['img_s'], '.0f')} ({fmt(r['speed_ratio'], '.2f')})",
          *(f"{fmt(r[f'free_{lv}_img_s'], '.0f')} ({fmt(r[f'free_{lv}_speed_ratio'], '.2f')})"
            for lv in args.levels)] for r in rows]))  # fmt: skip
    meta = dict(**environment(device), repeats=args.repeats, dtype=dtype, layout=layout)
    print("written to", write_results(name + args.name, device, meta, rows, args.out))


def profile_command(description: str, steps: int, extra: Callable | None = None):
    """The command line of the step profilers (profile_step.py, profile_roles.py): models, task, batch, image size,
    steps, device, ``--name`` and ``--out``, plus what ``extra(parser)`` adds. Returns the arguments and one
    ``Setting`` per model: the harness's step (bf16 autocast, channels_last, batch 128 train / 256 inference on a
    GPU; fp32 NCHW at batch 2 on a CPU), in ``--mode`` where ``extra`` adds it, else eager."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--task", default="train", choices=["train", "inference"])
    ap.add_argument("--batch", type=int)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--name", default="", help="suffix of the results file's name")
    ap.add_argument("--out", type=Path, default=RESULTS)
    if extra is not None:
        extra(ap)
    args = ap.parse_args()
    gpu = args.device == "cuda"
    batch = args.batch or ((128 if args.task == "train" else 256) if gpu else 2)
    dtype, layout = ("bf16", "channels_last") if gpu else ("fp32", "nchw")
    mode = getattr(args, "mode", "eager")
    return args, [Setting(m, args.task, batch, dtype, layout, mode, args.img_size) for m in args.models]
