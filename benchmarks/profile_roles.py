"""Where an eager training step's device time goes, by the role of the module that spent it (forward + backward).

    python -m benchmarks.profile_roles --models scnet50 resnet50 [--task train] [--batch-size 128] [--name SUFFIX]

Each operator's kernels are charged to the innermost module that issued it, and each backward node to the module
whose forward operator recorded it (``benchmarks.profiling.module_profile``); the modules are then grouped by role:
the 1x1 and 3x3 convolutions, the self-calibration's K2 branch and element-wise gate, batch norms, ReLUs, the
concatenation, the residual sum. Same step as ``adaptconv benchmark`` (bf16 autocast, channels_last on a GPU; fp32
NCHW on a CPU). Writes benchmarks/results/profile_roles[-<name>]-<device>.json.
"""

from __future__ import annotations

import argparse
import collections

import torch

from adaptconv.benchmark.harness import create

from . import profiling, record

STEM = {"conv1", "bn1", "act1", "maxpool"}


def role(path: str | None, cls: str | None, op: str, kernel: dict[str, tuple]) -> str:
    """The role of the module at ``path`` (class ``cls``) for operator ``op``; ``kernel``: conv kernel sizes."""
    if path is None or path.startswith("<"):
        return {"<optimizer>": "optimizer", "<autograd>": "gradient sums (backward)"}.get(path, "loss, other")
    top = path.split(".")[0]
    if not top.startswith("layer"):
        return "stem" if top in STEM else "head (pool, classifier)"
    if ".k2" in path:
        return "K2 branch at 1/r (pool, 3x3 conv, BN)"
    if ".downsample" in path:
        return "shortcut (strided 1x1 conv / pool, BN)"
    if cls == "BatchNorm2d":
        return "batch norm"
    if cls == "ReLU":
        return "ReLU"
    if cls == "Conv2d":
        return f"{kernel[path][0]}x{kernel[path][1]} conv"
    if "scconv" in path:
        return "calibration gate (up-sample, add, sigmoid, multiply)"
    if cls == "AvgPool2d":
        return "avd pool"
    if op in ("aten::cat", "CatBackward0"):
        return "concatenation"
    if op in ("aten::contiguous", "aten::clone", "aten::copy_"):
        return "copies (SCNet's calibrated half into one buffer)"
    return "residual sum" if "Bottleneck" in (cls or "") else f"other ({cls})"


def parser() -> argparse.ArgumentParser:
    return profiling.parser("profile_roles", __doc__, ["scnet50", "resnet50"], steps=3)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = profiling.settings(args)
    gpu = args.device == "cuda"
    results = []
    for s in settings:
        model = s.model
        kernel = {n: m.kernel_size for n, m in create(model).named_modules() if isinstance(m, torch.nn.Conv2d)}
        prof = profiling.module_profile(s, args.device, steps=args.steps)
        roles: dict[str, dict] = collections.defaultdict(lambda: dict(forward=0.0, backward=0.0, launches=0.0))
        for r in prof["rows"]:
            agg = roles[role(r["module"], r["cls"], r["op"], kernel)]
            agg[r["direction"]] += r["ms"]
            agg["launches"] += r["calls"]
        table = sorted(({"role": k, **v} for k, v in roles.items()), key=lambda r: -(r["forward"] + r["backward"]))
        results.append(dict(model=model, total_ms=prof["total_ms"], roles=table, modules=prof["rows"]))
        print(f"\n## {model}: {s.task}, batch {s.batch}, {s.dtype}, {s.layout}: {prof['total_ms']:.2f} ms of "
              f"{'kernels' if gpu else 'operators'} a step")  # fmt: skip
        print(record.markdown_table(["role", "forward ms", "backward ms", "share", "launches"],
                                    [[r["role"], f"{r['forward']:.2f}", f"{r['backward']:.2f}",
                                      f"{100 * (r['forward'] + r['backward']) / prof['total_ms']:.1f}%",
                                      f"{r['launches']:.0f}"] for r in table]))  # fmt: skip
    print("\nwritten to", profiling.write(args, settings, results))


if __name__ == "__main__":
    main()
