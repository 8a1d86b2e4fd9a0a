"""Hardware counters of the aggregation kernels (Nsight Compute), for the questions timings cannot answer.

Runs each case of ``CASES[impl]`` (one of RedNet-50's layer shapes and a layout; batch 64, bfloat16) twice (the
first compiles), the forward and the backward, with a fixed configuration (no autotuning); run it under ``ncu`` (from
the repository root) and summarise:

    ADAPTCONV_AUTOTUNE=0 ncu --clock-control none \\
        --kernel-name regex:"^(forward|backward|weight_grad|input_grad)_kernel$" --section SpeedOfLight \\
        --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \\
        --section ComputeWorkloadAnalysis --section LaunchStats --section SchedulerStats \\
        -o prof python -m benchmarks.ncu_kernels
    ncu -i prof.ncu-rep --page details --csv > details.csv
    python -m benchmarks.ncu_kernels --summarise details.csv [--name SUFFIX]

``--impl nvrtc`` does the same for the CUDA C++ kernels (``--kernel-name regex:"^aggregate_"``; three launches a
run: forward, grad_w, grad_x), in both steps. The summary (duration, throughputs as % of peak, occupancy, issue
rate, cache hit rates, registers per kernel launch, in launch order) goes to
benchmarks/results/ncu_kernels[-<name>]-cuda.json; ``CASES`` says which launch is which. Summarise on the machine
that ran the kernels: the record's device and versions are those of the machine that summarises.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from . import flags, record
from .aggregation import layer_case

# (layer, memory format): the channels_last (pixel-block) kernels at the 56x56 and 7x7 maps, the spatial-tile
# kernels on NCHW input; each kernel's first tuning configuration (ADAPTCONV_AUTOTUNE=0).
CASES = {
    "triton": [("layer1", "channels_last"), ("layer1", "nchw"), ("layer4", "channels_last")],
    "nvrtc": [("layer1", "channels_last"), ("layer2.0", "channels_last"), ("layer4", "channels_last")],
}
#: kernel launches of one case: the forward and backward kernels, twice
LAUNCHES = {"triton": 4, "nvrtc": 6}
METRICS = [
    "Duration", "Compute (SM) Throughput", "DRAM Throughput", "L1/TEX Cache Throughput", "L2 Cache Throughput",
    "Achieved Occupancy", "Theoretical Occupancy", "Registers Per Thread", "Issued Warp Per Scheduler",
    "Warp Cycles Per Issued Instruction", "L1/TEX Hit Rate", "L2 Hit Rate", "Mem Busy", "Grid Size", "Block Size",
]  # fmt: skip


def run_cases(impl: str) -> None:
    from .aggregation import IMPLEMENTATIONS  # imports Triton and the NVRTC launchers

    forward, backward = IMPLEMENTATIONS[impl]
    for layer, layout in CASES[impl]:
        x, w, gy, conf = layer_case(layer, 64, torch.bfloat16, layout, "cuda")
        for _ in range(2):
            forward(x, w, *conf)
            backward(gy, x, w, *conf)
    torch.cuda.synchronize()


def summarise(details: Path, impl: str = "triton") -> list[dict]:
    """One row per kernel launch of ncu's details page (CSV): the metrics above, as numbers, and its case."""
    launches: dict[str, dict] = {}
    with details.open(newline="") as f:
        for r in csv.DictReader(f):
            row = launches.setdefault(r["ID"], {"kernel": r["Kernel Name"]})
            if r["Metric Name"] in METRICS:
                name = f"{r['Metric Name']} [{r['Metric Unit']}]" if r["Metric Unit"] else r["Metric Name"]
                row[name] = float(r["Metric Value"].replace(",", ""))
    rows = [launches[k] for k in sorted(launches, key=int)]
    # Each case runs its kernels twice, in CASES' order.
    cases = [case for case in CASES[impl] for _ in range(LAUNCHES[impl])]
    for row, case in zip(rows, cases + [None] * (len(rows) - len(cases)), strict=False):
        row["case"] = None if case is None else "/".join(map(str, case))
    return rows


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("ncu_kernels", __doc__)
    ap.add_argument("--summarise", type=Path, help="ncu's details page as CSV: write the summary instead")
    ap.add_argument("--impl", choices=list(CASES), default="triton", help="which kernels (default: triton)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.summarise is not None:
        path = record.write(args, flags.default_device(), summarise(args.summarise, args.impl),
                            source=args.summarise.name, cases=CASES[args.impl])  # fmt: skip
        print(f"written to {path}")
        return
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA device (and ncu around it)")
    run_cases(args.impl)


if __name__ == "__main__":
    main()
