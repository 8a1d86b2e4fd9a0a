"""Where one training (or inference) step's device time goes, by kernel category, for each model given.

    python -m benchmarks.profile_step --models rednet50 resnet50 scnet50 [--task train] [--mode eager]
                                      [--batch-size 128] [--top 15] [--name SUFFIX]

Same step as ``adaptconv benchmark`` (bf16 autocast, channels_last on a GPU; fp32 NCHW on a CPU). Prints a table
of categories and the most expensive kernels per model; writes
benchmarks/results/profile_step[-<mode>][-<name>]-<device>.json (the mode where it is not eager).
"""

from __future__ import annotations

import argparse

from . import profiling, record


def parser() -> argparse.ArgumentParser:
    ap = profiling.parser("profile_step", __doc__, ["rednet50", "resnet50"], steps=5, mode=True)
    ap.add_argument("--top", type=int, default=12, help="kernels listed per model")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = profiling.settings(args)
    rows = []
    for s in settings:
        prof = profiling.kernel_profile(s, args.device, steps=args.steps)
        rows.append(dict(model=s.model, **prof))
        print(f"\n## {s.model}: {s.task}, batch {s.batch}, {s.dtype}, {s.layout}, {s.mode}: {prof['total_ms']:.2f} "
              f"ms of kernels a step, {prof['launches']:.0f} launches; host time {prof['host_ms']:.2f} ms, "
              f"{prof['synchronizations']} synchronizations")  # fmt: skip
        for site in prof["synchronization_sites"]:
            print("  synchronization:", site)
        print(record.markdown_table(["category", "ms", "share", "launches"],
                                    [[c["category"], f"{c['ms']:.2f}", f"{100 * c['ms'] / prof['total_ms']:.1f}%",
                                      f"{c['calls']:.0f}"] for c in prof["categories"]]))  # fmt: skip
        print(record.markdown_table(["kernel", "category", "ms", "launches"],
                                    [[k["name"][:90], k["category"], f"{k['ms']:.3f}", f"{k['calls']:.0f}"]
                                     for k in prof["kernels"][: args.top]]))  # fmt: skip
    parts = () if args.mode == "eager" else (args.mode,)
    print("\nwritten to", profiling.write(args, settings, rows, parts))


if __name__ == "__main__":
    main()
