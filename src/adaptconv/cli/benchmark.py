"""``adaptconv benchmark``: models against a ResNet baseline in the same run; JSON, a Markdown table, a plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..benchmark.harness import MODES


def add_benchmark_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "benchmark",
        help="img/s, ms/step and peak memory of models against a ResNet baseline measured in the same run",
        description="Times each model and its baseline (timm's ResNet of the same depth, or --baseline) one after "
        "the other in one process: median of --repeats steps after --warmup, cycling through --input-sets "
        "batches. Defaults on a GPU: train at batch 128 and inference at 256, bf16, channels_last; on a CPU: "
        "inference latency at batch 1 (a training step at batch 8), fp32.",
    )
    from ..benchmark.harness import VARIANTS

    p.add_argument("models", nargs="*", default=["rednet50", "scnet50"], metavar="MODEL",
                   help="default: rednet50 scnet50; a model may take +VARIANT suffixes: "
                        + ", ".join(f"{v} ({family})" for v, (family, _) in VARIANTS.items()))  # fmt: skip
    p.add_argument("--baseline", help="one baseline for every model (default: the ResNet of the same depth)")
    p.add_argument("--task", nargs="+", choices=["inference", "train"], help="default: both on a GPU, inference on CPU")
    p.add_argument("--batch-size", "-b", nargs="+", type=int, metavar="N",
                   help="default: train 128 and inference 256 on a GPU; train 8 and inference 1 on a CPU")  # fmt: skip
    p.add_argument("--dtype", nargs="+", choices=["fp32", "bf16", "fp16"], help="default: bf16 on a GPU, fp32 on CPU")
    p.add_argument("--layout", nargs="+", choices=["nchw", "channels_last"],
                   help="default: channels_last on a GPU, nchw on CPU")  # fmt: skip
    p.add_argument(
        "--mode",
        nargs="+",
        choices=MODES,
        default=["eager"],
        help="eager, torch.compile, or torch.compile with CUDA graphs (reduce-overhead); default: eager",
    )
    p.add_argument("--img-size", type=int, default=224, help="default: 224")
    p.add_argument("--repeats", type=int, default=20, help="timed steps per setting, median reported (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--input-sets", type=int, default=3, help="different random batches cycled through (default 3)")
    p.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda if available")
    p.add_argument("--output", default="benchmarks/results", help="folder for the results (default %(default)s)")
    p.add_argument("--name", default="models", help="results go to NAME-DEVICE.json/.md (default %(default)s)")
    p.add_argument("--plot", action="store_true", help="also draw the ratios to NAME-DEVICE.png (needs matplotlib)")
    p.set_defaults(func=cmd_benchmark)
    return p


def cmd_benchmark(args: argparse.Namespace) -> int:
    from ..benchmark import environment, markdown, plot_ratios, run, settings, write_json

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("adaptconv benchmark: error: --device cuda, but PyTorch sees no CUDA device", file=sys.stderr)
        return 2
    gpu = device == "cuda"
    tasks = args.task or (["train", "inference"] if gpu else ["inference"])
    if args.batch_size:
        batches = {t: args.batch_size for t in tasks}
    else:
        # a training step needs more than one image a batch (batch norm); latency is the CPU's inference figure
        batches = {"train": [128], "inference": [256]} if gpu else {"train": [8], "inference": [1]}
    for flag in ("repeats", "img_size", "input_sets"):
        if getattr(args, flag) < 1:
            print(f"adaptconv benchmark: error: --{flag.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    try:
        todo = settings(args.models, tasks, batches, args.dtype or (["bf16"] if gpu else ["fp32"]),
                        args.layout or (["channels_last"] if gpu else ["nchw"]), args.mode, args.img_size)  # fmt: skip
    except ValueError as e:
        print(f"adaptconv benchmark: error: {e}", file=sys.stderr)
        return 2
    env = environment(device)
    rows = run(todo, device, args.baseline, args.repeats, args.warmup, args.input_sets,
               progress=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "output")}  # no paths of the machine
    out = Path(args.output)
    path = write_json(out / f"{args.name}-{device}.json", env, options, rows)
    table = markdown(rows, env)
    (out / f"{args.name}-{device}.md").write_text(table)
    print(table)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    if args.plot:
        print(f"wrote {plot_ratios(rows, out / f'{args.name}-{device}.png')}")
    failed = [r for r in rows if r["error"] or r["baseline_error"]]
    return 1 if failed else 0
