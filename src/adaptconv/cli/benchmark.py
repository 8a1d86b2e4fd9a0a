"""``adaptconv benchmark``: models against a ResNet baseline in the same run; JSON, a Markdown table, a plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: where a run's results go unless --output says otherwise: a folder of the user's, beside 'adaptconv train''s
#: output/train (the repository's committed results in benchmarks/results are only written when asked for)
DEFAULT_OUTPUT = Path("output") / "benchmark"


def benchmark_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``adaptconv benchmark``."""
    from ..benchmark.harness import MODES, VARIANTS
    from ..engine.limits import COUNT, NON_NEGATIVE_COUNT
    from .arguments import checked

    p.add_argument("models", nargs="*", default=["rednet50", "scnet50"], metavar="MODEL",
                   help="default: rednet50 scnet50; a model may take +VARIANT suffixes: "
                        + ", ".join(f"{v} ({family})" for v, (family, _) in VARIANTS.items()))  # fmt: skip
    p.add_argument("--baseline", help="one baseline for every model (default: the ResNet of the same depth)")
    p.add_argument("--task", nargs="+", choices=["inference", "train"], help="default: both on a GPU, inference on CPU")
    p.add_argument("--batch-size", "-b", nargs="+", type=checked("batch_size"), metavar="N",
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
    p.add_argument("--fold", nargs="+", choices=["no", "yes"], default=["no"],
                   help="fold batch norms into the convolutions (adaptconv.fuse_for_inference), the model and its "
                        "baseline alike; inference only. 'no yes' measures both (default: no)")  # fmt: skip
    p.add_argument("--img-size", type=checked("img_size"), default=224, help="default: 224")
    p.add_argument("--repeats", type=checked("repeats", COUNT), default=20,
                   help="timed steps per setting, median reported (default 20)")  # fmt: skip
    p.add_argument("--warmup", type=checked("warmup", NON_NEGATIVE_COUNT), default=5,
                   help="untimed steps first (default 5)")  # fmt: skip
    p.add_argument("--input-sets", type=checked("input_sets", COUNT), default=3,
                   help="different random batches cycled through (default 3)")  # fmt: skip
    p.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda if available")
    p.add_argument("--output", default=str(DEFAULT_OUTPUT), help="folder for the results (default %(default)s)")
    p.add_argument("--name", default="models", help="results go to NAME-DEVICE.json/.md (default %(default)s)")
    p.add_argument("--plot", action="store_true", help="also draw the ratios to NAME-DEVICE.png (needs matplotlib)")
    p.add_argument("--overwrite", action="store_true", help="replace result files that exist (default: refuse)")


def _result_files(args: argparse.Namespace, device: str) -> list[Path]:
    stem = Path(args.output) / f"{args.name}-{device}"
    return [stem.with_suffix(s) for s in (".json", ".md", *([".png"] if args.plot else []))]


def cmd_benchmark(args: argparse.Namespace) -> int:
    import torch

    from ..benchmark import environment, markdown, plot_ratios, run, settings, write_json
    from ..files import atomic_write

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
    try:
        todo = settings(args.models, tasks, batches, args.dtype or (["bf16"] if gpu else ["fp32"]),
                        args.layout or (["channels_last"] if gpu else ["nchw"]), args.mode, args.img_size,
                        [f == "yes" for f in args.fold])  # fmt: skip
    except ValueError as e:
        print(f"adaptconv benchmark: error: {e}", file=sys.stderr)
        return 2
    existing = [str(f) for f in _result_files(args, device) if f.exists()]
    if existing and not args.overwrite:
        print(f"adaptconv benchmark: error: {' and '.join(existing)} exist(s): pass --overwrite to replace them, or "
              "choose another --output or --name", file=sys.stderr)  # fmt: skip
        return 2
    env = environment(device)
    rows = run(todo, device, args.baseline, args.repeats, args.warmup, args.input_sets,
               progress=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "output", "overwrite")}
    out = Path(args.output)
    path = write_json(out / f"{args.name}-{device}.json", env, options, rows, overwrite=args.overwrite)
    table = markdown(rows, env)
    atomic_write(out / f"{args.name}-{device}.md", lambda f: f.write(table.encode()), overwrite=args.overwrite)
    print(table)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    if args.plot:
        print(f"wrote {plot_ratios(rows, out / f'{args.name}-{device}.png')}")
    failed = [r for r in rows if r["error"] or r["baseline_error"]]
    return 1 if failed else 0
