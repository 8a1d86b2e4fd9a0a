"""Peak memory and time of the involution aggregation's implementations: reference, unfold (and Triton on CUDA).

RedNet-50's first-stage shape by default: N=64, C=64, 56x56, K=7, 16 channels a group, stride 1.
On CUDA: peak memory above the inputs (torch.cuda.max_memory_allocated) and median time over CUDA events.
On CPU: time only (there is no allocator counter to read).

    python benchmarks/involution_memory.py [--batch 64] [--device cuda] [--dtype float32 bfloat16]

Writes benchmarks/results/involution_memory-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import RESULTS, aggregation_step, markdown_table, write_results

from adaptconv.benchmark import environment, median_ms
from adaptconv.ops.common import TRITON_INSTALLED


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--kernel", type=int, default=7)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    k, s, d = args.kernel, 1, 1
    p = (k - 1) // 2
    n, c, h = args.batch, args.channels, args.size
    rows = []
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        x = torch.randn(n, c, h, h, device=args.device, dtype=dtype)
        w = torch.randn(n, (c // 16) * k * k, h, h, device=args.device, dtype=dtype)
        impls = ["reference", "unfold"] + (["triton"] if args.device == "cuda" and TRITON_INSTALLED else [])
        for impl in impls:
            for backward in (False, True):
                r = measure(impl, x, w, (k, s, p, d), backward, args.repeats)
                rows.append(dict(impl=impl, dtype=dtype_name, pass_="fwd+bwd" if backward else "fwd", **r))
    x_bytes = n * c * h * h * torch.empty(0, dtype=torch.float32).element_size()
    meta = dict(
        **environment(args.device),
        shape=dict(N=n, C=c, H=h, W=h, K=k, group_channels=16, stride=s),
        input_fp32_bytes=x_bytes,
    )
    write_results("involution_memory", args.device, meta, rows, args.out)
    print(f"{meta['device']}, torch {meta['torch']}, {meta['date']}, shape {meta['shape']}")
    headers = ["implementation", "dtype", "pass", "peak extra memory (MiB)", "median time (ms)"]
    table = [
        [r["impl"], r["dtype"], r["pass_"], "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.0f}",
         f"{r['median_ms']:.2f}"]
        for r in rows
    ]  # fmt: skip
    print(markdown_table(headers, table))


if __name__ == "__main__":
    main()
