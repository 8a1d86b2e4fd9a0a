"""What a model's first calls at a new input size cost (compiling and tuning kernels), in a fresh process with empty
kernel caches (cold) and again in another process with the caches the first one left (warm).

    python -m benchmarks.first_call [--models rednet50 resnet50] [--batch-size 128] [--img-size 128] [--dtype bf16]

Each (model, cache state) runs in its own process with its own Triton and NVRTC cache folders (``TRITON_CACHE_DIR``,
``ADAPTCONV_CACHE_DIR``, made empty for the cold run), so the CUDA context, cuDNN's set-up and Python's imports are
in every run alike: the ResNet baseline shows what any model pays. In that process, in this order: a training step at
``--batch-size`` (forward, backward, SGD update under autocast, as ``adaptconv benchmark`` times it), the same step
with a partial batch (3 images fewer), inference at twice the batch, and a partial inference batch (5 fewer). For
each: the first call's seconds, the steady call's (median of ``--repeats`` further calls) and the difference, the
first-call cost. Writes benchmarks/results/first_call[-<name>]-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from adaptconv.benchmark.harness import LAYOUTS, Setting, create, input_batches, timed_step

from . import flags, record

#: the steps of one process, in order: (label, task, batch from --batch-size B)
STEPS = (
    ("train", "train", lambda b: b),
    ("train, partial batch", "train", lambda b: b - 3),
    ("inference", "inference", lambda b: 2 * b),
    ("inference, partial batch", "inference", lambda b: 2 * b - 5),
)


def parser() -> flags.Parser:
    p = flags.parser("first_call", __doc__, models=["rednet50", "resnet50"], batch_size=128, img_size=128,
                     dtype="bf16", layout="channels_last", repeats=5, device=flags.default_device())  # fmt: skip
    p.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)  # the measuring process of one model
    return p


def _seconds(step, device: str) -> float:
    """Wall-clock seconds of one call of ``step``, the device synchronised before and after: a first call's cost is
    mostly host time (compiling, tuning), which ``timing.median_ms``'s queued CUDA events are not meant to time."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_process(model_name: str, batch: int, img_size: int, dtype: str, layout: str, repeats: int,
                    device: str) -> list[dict]:  # fmt: skip
    """The steps of :data:`STEPS` for one model in this process: first and steady seconds of each."""
    start = time.perf_counter()
    model = create(model_name).to(device, memory_format=LAYOUTS[layout])
    build_s = time.perf_counter() - start
    rows = []
    for label, task, size in STEPS:
        s = Setting(model_name, task, size(batch), dtype, layout, "eager", img_size)
        step, _ = timed_step(s, model, device, input_batches(s, device, 1, 1000))
        first = _seconds(step, device)
        steady = statistics.median(_seconds(step, device) for _ in range(repeats))
        rows.append(dict(step=label, batch=s.batch, first_s=first, steady_s=steady, first_call_s=first - steady))
    rows[0]["build_s"] = build_s
    return rows


def _run_child(args, model: str, caches: Path) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("ADAPTCONV_AUTOTUNE", "TRITON_INTERPRET")}
    env.update(TRITON_CACHE_DIR=str(caches / "triton"), ADAPTCONV_CACHE_DIR=str(caches / "nvrtc"))
    argv = [sys.executable, "-m", "benchmarks.first_call", "--child", model, "--batch-size", str(args.batch_size),
            "--img-size", str(args.img_size), "--dtype", args.dtype, "--layout", args.layout, "--repeats",
            str(args.repeats), "--device", args.device]  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode:
        raise RuntimeError(f"{model}: the measuring process failed:\n{out.stderr[-3000:]}")
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    rows[0]["process_s"] = time.perf_counter() - start
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.child:
        rows = measure_process(args.child, args.batch_size, args.img_size, args.dtype, args.layout, args.repeats,
                               args.device)  # fmt: skip
        print(json.dumps(rows))
        return
    all_rows = []
    for model in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            for cache in ("cold", "warm"):
                for row in _run_child(args, model, Path(tmp)):
                    all_rows.append(dict(model=model, cache=cache, **row))
    table = [[r["model"], r["cache"], r["step"], r["batch"], f"{r['first_s']:.2f}", f"{r['steady_s'] * 1e3:.1f}",
              f"{r['first_call_s']:.2f}"] for r in all_rows]  # fmt: skip
    print(record.markdown_table(["model", "caches", "step", "batch", "first call s", "steady ms", "first-call cost s"],
                                table))  # fmt: skip
    totals = {f"{m}/{c}": sum(r["first_call_s"] for r in all_rows if r["model"] == m and r["cache"] == c)
              for m in args.models for c in ("cold", "warm")}  # fmt: skip
    print("first-call cost, all steps:", {k: round(v, 2) for k, v in totals.items()})
    print("written to", record.write(args, args.device, all_rows, first_call_totals_s=totals))


if __name__ == "__main__":
    main()
