"""Where one training (or inference) step's device time goes, by kernel category, for each model given.

    python benchmarks/profile_step.py rednet50 resnet50 scnet50 [--task train] [--mode eager] [--batch 128] [--top 15]

Same step as ``adaptconv benchmark`` (bf16 autocast, channels_last on a GPU; fp32 NCHW on a CPU). Prints a table
of categories and the most expensive kernels per model; writes benchmarks/results/profile_step-<device>.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import RESULTS, markdown_table, write_results

from adaptconv.benchmark import MODES, Setting, environment
from adaptconv.benchmark.profile import kernel_profile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--task", default="train", choices=["train", "inference"])
    ap.add_argument("--mode", default="eager", choices=MODES)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--top", type=int, default=12, help="kernels listed per model")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--name", default="", help="suffix of the results file's name")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    gpu = args.device == "cuda"
    batch = args.batch or ((128 if args.task == "train" else 256) if gpu else 2)
    rows = []
    for model in args.models:
        s = Setting(model, args.task, batch, "bf16" if gpu else "fp32", "channels_last" if gpu else "nchw",
                    mode=args.mode, img_size=args.img_size)  # fmt: skip
        prof = kernel_profile(s, args.device, steps=args.steps)
        rows.append(dict(model=model, **prof))
        print(f"\n## {model}: {s.task}, batch {batch}, {s.dtype}, {s.layout}, {s.mode}: {prof['total_ms']:.2f} ms "
              f"of kernels a step, {prof['launches']:.0f} launches; host time {prof['host_ms']:.2f} ms, "
              f"{prof['synchronizations']} synchronizations")  # fmt: skip
        for site in prof["synchronization_sites"]:
            print("  synchronization:", site)
        print(markdown_table(["category", "ms", "share", "launches"],
                             [[c["category"], f"{c['ms']:.2f}", f"{100 * c['ms'] / prof['total_ms']:.1f}%",
                               f"{c['calls']:.0f}"] for c in prof["categories"]]))  # fmt: skip
        print(markdown_table(["kernel", "category", "ms", "launches"],
                             [[k["name"][:90], k["category"], f"{k['ms']:.3f}", f"{k['calls']:.0f}"]
                              for k in prof["kernels"][: args.top]]))  # fmt: skip
    meta = dict(**environment(args.device), task=args.task, mode=args.mode, batch=batch, img_size=args.img_size,
                steps=args.steps)  # fmt: skip
    name = "profile_step" + ("" if args.mode == "eager" else f"-{args.mode}") + args.name
    print("\nwritten to", write_results(name, args.device, meta, rows, args.out))


if __name__ == "__main__":
    main()
