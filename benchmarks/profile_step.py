"""Where one training (or inference) step's device time goes, by kernel category, for each model given.

    python benchmarks/profile_step.py rednet50 resnet50 scnet50 [--task train] [--mode eager] [--batch 128] [--top 15]

Same step as ``adaptconv benchmark`` (bf16 autocast, channels_last on a GPU; fp32 NCHW on a CPU). Prints a table
of categories and the most expensive kernels per model; writes benchmarks/results/profile_step-<device>.json.
"""

from __future__ import annotations

from _common import markdown_table, profile_command, write_results

from adaptconv.benchmark import MODES, environment
from adaptconv.benchmark.profile import kernel_profile


def main() -> None:
    def extra(ap) -> None:
        ap.add_argument("--mode", default="eager", choices=MODES)
        ap.add_argument("--top", type=int, default=12, help="kernels listed per model")

    args, settings = profile_command(__doc__, steps=5, extra=extra)
    rows = []
    for model, s in zip(args.models, settings, strict=True):
        prof = kernel_profile(s, args.device, steps=args.steps)
        rows.append(dict(model=model, **prof))
        print(f"\n## {model}: {s.task}, batch {s.batch}, {s.dtype}, {s.layout}, {s.mode}: {prof['total_ms']:.2f} ms "
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
    meta = dict(**environment(args.device), task=args.task, mode=args.mode, batch=settings[0].batch,
                img_size=args.img_size, steps=args.steps)  # fmt: skip
    name = "profile_step" + ("" if args.mode == "eager" else f"-{args.mode}") + args.name
    print("\nwritten to", write_results(name, args.device, meta, rows, args.out))


if __name__ == "__main__":
    main()
