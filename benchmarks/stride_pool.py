"""The involution's stride-2 average pool at RedNet-50's shapes: ``avg_pool2d`` against ``stride_avg_pool``.

    python benchmarks/stride_pool.py [--batch 128] [--dtype bfloat16] [--repeats 50]

The kernel generator of each stride-2 involution averages its input over 2x2 windows. Times PyTorch's
``avg_pool2d`` (ceil mode, no padding counted) and ``adaptconv.ops._layers.stride_avg_pool`` (a window mean on
channels_last CUDA maps), forward and forward + backward, channels_last; writes
benchmarks/results/stride_pool-<device>.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import RESULTS, markdown_table, write_results

from adaptconv.benchmark import environment, median_ms
from adaptconv.ops._layers import stride_avg_pool

#: (layer, channels, side) of RedNet-50's stride-2 involutions' inputs
SHAPES = [("layer2.0", 128, 56), ("layer3.0", 256, 28), ("layer4.0", 512, 14)]
POOLS = {
    "avg_pool2d": lambda x: F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False),
    "stride_avg_pool": lambda x: stride_avg_pool(x, 2),
}


def step(pool, x: torch.Tensor, grad: torch.Tensor | None):
    def run() -> None:
        if grad is None:
            with torch.no_grad():
                pool(x)
        else:
            torch.autograd.grad(pool(x), x, grad)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    rows = []
    for layer, c, side in SHAPES:
        x = torch.randn(args.batch, c, side, side, device=args.device, dtype=dtype)
        x = x.to(memory_format=torch.channels_last).requires_grad_()
        grad = torch.randn_like(POOLS["avg_pool2d"](x))
        row = dict(layer=layer, channels=c, side=side)
        for name, pool in POOLS.items():
            row[f"{name}_fwd_us"] = 1e3 * median_ms(step(pool, x, None), args.device, args.repeats)
            row[f"{name}_fwd_bwd_us"] = 1e3 * median_ms(step(pool, x, grad), args.device, args.repeats)
        rows.append(row)
    meta = dict(**environment(args.device), batch=args.batch, dtype=args.dtype, layout="channels_last")
    print(markdown_table(["layer", "C", "side", *(f"{p} {k} us" for p in POOLS for k in ("fwd", "fwd+bwd"))],
                         [[r["layer"], r["channels"], r["side"],
                           *(f"{r[f'{p}_{k}_us']:.0f}" for p in POOLS for k in ("fwd", "fwd_bwd"))]
                          for r in rows]))  # fmt: skip
    print("written to", write_results("stride_pool", args.device, meta, rows, args.out))


if __name__ == "__main__":
    main()
