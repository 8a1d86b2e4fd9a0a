"""Peak memory and time of the involution aggregation's implementations: reference, unfold (and Triton on CUDA).

RedNet-50's first-stage shape by default: N=64, C=64, 56x56, K=7, 16 channels a group, stride 1.
On CUDA: peak memory above the inputs (torch.cuda.max_memory_allocated) and median time over CUDA events.
On CPU: time only (there is no allocator counter to read).

    python -m benchmarks.involution_memory [--batch-size 64] [--device cuda] [--dtype fp32 bf16]

Writes benchmarks/results/involution_memory[-<name>]-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse

import torch

from adaptconv.benchmark import median_ms

from . import flags, record
from .aggregation import GROUP_CHANNELS, IMPLEMENTATIONS, aggregation_step


def measure(impl: str, x, w, conf: tuple, backward: bool, repeats: int) -> dict:
    step = aggregation_step(impl, x, w, conf, backward)
    step()  # warm-up
    peak = None
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    return dict(peak_bytes=peak, median_ms=median_ms(step, x.device.type, repeats, warmup=0))


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("involution_memory", __doc__, batch_size=64, dtype=["fp32", "bf16"],
                      device=flags.default_device(), repeats=10)  # fmt: skip
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=56, help="side of the feature map")
    ap.add_argument("--kernel", type=int, default=7)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    k, s, d = args.kernel, 1, 1
    p = (k - 1) // 2
    n, c, h = args.batch_size, args.channels, args.size
    rows = []
    for dtype_name in args.dtype:
        dtype = flags.TORCH_DTYPES[dtype_name]
        x = torch.randn(n, c, h, h, device=args.device, dtype=dtype)
        w = torch.randn(n, (c // GROUP_CHANNELS) * k * k, h, h, device=args.device, dtype=dtype)
        impls = ["reference", "unfold"] + (["triton"] if args.device == "cuda" and "triton" in IMPLEMENTATIONS else [])
        for impl in impls:
            for backward in (False, True):
                r = measure(impl, x, w, (k, s, p, d), backward, args.repeats)
                rows.append(dict(impl=impl, dtype=dtype_name, pass_="fwd+bwd" if backward else "fwd", **r))
    shape = dict(N=n, C=c, H=h, W=h, K=k, group_channels=GROUP_CHANNELS, stride=s)
    path = record.write(args, args.device, rows, shape=shape, input_fp32_bytes=n * c * h * h * 4)
    print(f"shape {shape}; written to {path}")
    headers = ["implementation", "dtype", "pass", "peak extra memory (MiB)", "median time (ms)"]
    table = [
        [r["impl"], r["dtype"], r["pass_"], "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.0f}",
         f"{r['median_ms']:.2f}"]
        for r in rows
    ]  # fmt: skip
    print(record.markdown_table(headers, table))


if __name__ == "__main__":
    main()
