"""SCNet's latency against its ResNet in one process, eager and with inference folding: batch 1, fp32, 224 px
(the CPU figure of docs/scnet_speed.md).

    python -m benchmarks.scnet_latency [--models scnet50 scnet50+official] [--repeats 30] [--device cpu]

Every model (the ``adaptconv benchmark`` names, ``+official`` for the official code's layers) and its baseline
ResNet run eager (``model.eval()``) and folded (``adaptconv.fuse_for_inference``), one forward each in turn, round
after round: a load that changes during the run (a shared machine) weighs on every model alike. Each row is a
model's median over the rounds and its ratio to the baseline's median in the same mode. The machine's load average
before and after goes into the record. Writes benchmarks/results/scnet_latency[-<name>]-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from adaptconv import fuse_for_inference
from adaptconv.benchmark.harness import baseline_for, create

from . import flags, record


def parser() -> argparse.ArgumentParser:
    return flags.parser("scnet_latency", __doc__, models=["scnet50", "scnet50+official"], batch_size=1, img_size=224,
                        repeats=30, warmup=3, device="cpu")  # fmt: skip


def _load() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    names = list(dict.fromkeys([baseline_for(m) for m in args.models] + args.models))
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=args.device)
    runs = {}
    for name in names:
        model = create(name).to(args.device).eval()
        runs[(name, False)] = model
        runs[(name, True)] = fuse_for_inference(model)
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in runs}
    load_before = _load()
    with torch.inference_mode():
        for round_ in range(args.warmup + args.repeats):
            for key, model in runs.items():
                if args.device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model(x)
                if args.device == "cuda":
                    torch.cuda.synchronize()
                if round_ >= args.warmup:
                    times[key].append((time.perf_counter() - start) * 1e3)
    median = {key: statistics.median(t) for key, t in times.items()}
    rows = []
    for (name, folded), ms in median.items():
        base = baseline_for(name)
        rows.append(dict(model=name, folded=folded, ms=ms, baseline=base, baseline_ms=median[(base, folded)],
                         latency_ratio=ms / median[(base, folded)], min_ms=min(times[(name, folded)])))  # fmt: skip
    print(record.markdown_table(["model", "mode", "ms (median)", "baseline", "baseline ms", "latency ×"],
                                [[r["model"], "folded" if r["folded"] else "eager", f"{r['ms']:.1f}", r["baseline"],
                                  f"{r['baseline_ms']:.1f}", f"{r['latency_ratio']:.2f}"] for r in rows]))  # fmt: skip
    path = record.write(args, args.device, rows, dtype="fp32", load_average_before=load_before,
                        load_average_after=_load())  # fmt: skip
    print("written to", path)


if __name__ == "__main__":
    main()
