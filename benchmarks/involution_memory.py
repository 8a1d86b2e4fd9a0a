"""Peak memory and time of the reference involution aggregation against the unfold formulation.

RedNet-50's first-stage shape by default: N=64, C=64, 56x56, K=7, 16 channels a group, stride 1.
On CUDA: peak memory above the inputs (torch.cuda.max_memory_allocated) and median time over CUDA events.
On CPU: time only (there is no allocator counter to read).

    python benchmarks/involution_memory.py [--batch 64] [--device cuda] [--dtype float32 bfloat16]

Writes benchmarks/results/involution_memory-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from adaptconv.ops import involution_aggregate, involution_aggregate_unfold


def measure(fn, x, w, k, s, p, d, backward: bool, repeats: int) -> dict:
    dev = x.device

    def step():
        if backward:
            xg, wg = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
            y = fn(xg, wg, k, s, p, d)
            y.backward(torch.ones_like(y))
        else:
            with torch.no_grad():
                fn(x, w, k, s, p, d)

    step()  # warm-up
    peak = None
    if dev.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    times = []
    for _ in range(repeats):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            step()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            step()
            times.append((time.perf_counter() - t) * 1e3)
    return dict(peak_bytes=peak, median_ms=statistics.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--kernel", type=int, default=7)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    k, s, d = args.kernel, 1, 1
    p = (k - 1) // 2
    n, c, h = args.batch, args.channels, args.size
    rows = []
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        x = torch.randn(n, c, h, h, device=args.device, dtype=dtype)
        w = torch.randn(n, (c // 16) * k * k, h, h, device=args.device, dtype=dtype)
        for impl, fn in [("reference (adaptconv)", involution_aggregate), ("unfold", involution_aggregate_unfold)]:
            for backward in (False, True):
                r = measure(fn, x, w, k, s, p, d, backward, args.repeats)
                rows.append(dict(impl=impl, dtype=dtype_name, pass_="fwd+bwd" if backward else "fwd", **r))
    x_bytes = n * c * h * h * torch.empty(0, dtype=torch.float32).element_size()
    meta = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device=torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine(),
        torch=torch.__version__,
        shape=dict(N=n, C=c, H=h, W=h, K=k, group_channels=16, stride=s),
        input_fp32_bytes=x_bytes,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"involution_memory-{args.device}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    print(f"{meta['device']}, torch {meta['torch']}, {meta['date']}, shape {meta['shape']}")
    print("| implementation | dtype | pass | peak extra memory (MiB) | median time (ms) |")
    print("|---|---|---|---|---|")
    for r in rows:
        mem = "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.0f}"
        print(f"| {r['impl']} | {r['dtype']} | {r['pass_']} | {mem} | {r['median_ms']:.2f} |")


if __name__ == "__main__":
    main()
