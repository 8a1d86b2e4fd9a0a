"""Time of each CUDA C++ kernel of the aggregation (forward, grad_w, grad_x; ``nvrtc_channels_last.py``) at RedNet-50's
layers, from the profiler, with the launch plan each got (block tile, threads, shared memory, grid): where the time of
``involution_op --impl nvrtc`` goes.

    python -m benchmarks.nvrtc_kernels [--batch-size 64] [--dtype bf16] [--layers layer1 ...] [--repeats 20]

Writes benchmarks/results/nvrtc_kernels[-<name>]-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import torch

from adaptconv.ops.involution import nvrtc_channels_last as launcher

from . import flags, record
from .aggregation import layer_case, layers_parser

KERNELS = ("forward", "backward_weight", "backward_input")


def _step(x, w, gy, conf) -> None:
    launcher.aggregate(x, w, *conf)
    launcher.aggregate_backward(gy, x, w, *conf)


def main(argv: list[str] | None = None) -> None:
    ap = layers_parser("nvrtc_kernels", __doc__)
    args = ap.parse_args(argv)
    rows = []
    for layer in args.layers:
        for dtype in args.dtype:
            x, w, gy, conf = layer_case(layer, args.batch_size, flags.TORCH_DTYPES[dtype], "channels_last", "cuda")
            spec = launcher.Specialisation(x.dtype, *conf[:2], conf[3])

            for _ in range(args.warmup):
                _step(x, w, gy, conf)
            torch.cuda.synchronize()
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                for _ in range(args.repeats):
                    _step(x, w, gy, conf)
                torch.cuda.synchronize()
            totals = {e.key: e.device_time_total / e.count for e in prof.key_averages()}
            for kernel in KERNELS:
                plan = launcher.launch_plan(kernel, spec, x, w, conf[2])
                g = plan.geometry
                us = totals.get(launcher.entry_point(kernel, g.GC))
                rows.append(dict(layer=layer, dtype=dtype, kernel=kernel, us=us,
                                 CB=g.CB, PXT=g.PXT, RT=g.RT, threads=plan.block[0], smem=plan.smem,
                                 blocks=plan.grid[0] * plan.grid[1]))  # fmt: skip
    path = record.write(args, "cuda", rows)
    print(f"written to {path}")
    keys = ["layer", "dtype", "kernel", "us", "CB", "PXT", "RT", "threads", "smem", "blocks"]
    cell = lambda r, k: f"{r[k]:.1f}" if k == "us" and r[k] is not None else r[k]  # noqa: E731
    print(record.markdown_table(keys, [[cell(r, k) for k in keys] for r in rows]))


if __name__ == "__main__":
    main()
