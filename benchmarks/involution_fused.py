"""Speed of the fused involution path against span conv + aggregation, at RedNet-50's layer shapes.

"unfused" is what ``Involution2d`` does by default: the span 1x1 conv writes the (N, G*K*K, H_out, W_out) kernels
and the aggregation reads them; "fused" is ``involution_fused``, whose forward computes the kernels inside the
aggregation kernel. Both from the reduced features (N, C/4, H_out, W_out) on, forward and forward + backward
(autograd), timed as in involution_op.py (CUDA events, median, L2 evicted before each timed run).

    python benchmarks/involution_fused.py [--batch 64] [--dtype float32 bfloat16] [--layers ...]

Writes benchmarks/results/involution_fused-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import RESULTS, markdown_table, write_results
from involution_op import GROUP_CHANNELS, LAYERS

from adaptconv.benchmark import environment, median_ms
from adaptconv.ops import involution_aggregate, involution_fused, involution_output_size


def unfused(x, reduced, span_weight, span_bias, *conf):
    return involution_aggregate(x, F.conv2d(reduced, span_weight[:, :, None, None], span_bias), *conf)


def step_for(fn, inputs, conf, backward: bool):
    grad = torch.randn_like(fn(*inputs, *conf)) if backward else None

    def step():
        if backward:
            leaves = [t.detach().requires_grad_(True) for t in inputs]
            torch.autograd.grad(fn(*leaves, *conf), leaves, grad)
        else:
            with torch.no_grad():
                fn(*inputs, *conf)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--memory-format", nargs="+", default=["contiguous", "channels_last"],
                    choices=["contiguous", "channels_last"])  # fmt: skip
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.repeats < 20:
        ap.error("--repeats must be at least 20")
    dev = args.device
    flush = torch.empty(2**28, dtype=torch.uint8, device=dev).zero_ if dev == "cuda" else None
    rows = []
    for layer, fmt_name, dtype_name in itertools.product(args.layers, args.memory_format, args.dtype):
        c, h, k, s = LAYERS[layer]
        conf = (k, s, (k - 1) // 2, 1)
        ho, wo = involution_output_size(h, h, *conf)
        fmt = torch.channels_last if fmt_name == "channels_last" else torch.contiguous_format
        dtype = getattr(torch, dtype_name)
        taps = c // GROUP_CHANNELS * k * k
        inputs = [
            torch.randn(args.batch, c, h, h, device=dev, dtype=dtype).contiguous(memory_format=fmt),
            torch.randn(args.batch, c // 4, ho, wo, device=dev, dtype=dtype).contiguous(memory_format=fmt),
            torch.randn(taps, c // 4, device=dev, dtype=dtype) / (c // 4) ** 0.5,
            torch.randn(taps, device=dev, dtype=dtype),
        ]
        for backward, (impl, fn) in itertools.product(
            (False, True), [("unfused", unfused), ("fused", involution_fused)]
        ):
            ms = median_ms(step_for(fn, inputs, conf, backward), dev, args.repeats, args.warmup, flush)
            rows.append(dict(layer=layer, C=c, H=h, K=k, stride=s, memory_format=fmt_name, dtype=dtype_name,
                             pass_="fwd+bwd" if backward else "fwd", impl=impl, median_ms=ms))  # fmt: skip
        del inputs
    meta = dict(**environment(dev), batch=args.batch, group_channels=GROUP_CHANNELS, reduction=4,
                repeats=args.repeats, warmup=args.warmup, l2_flush=flush is not None)  # fmt: skip
    path = write_results("involution_fused", dev, meta, rows, args.out)
    print(f"{meta['device']}, torch {meta['torch']}, triton {meta['triton']}, {meta['date']}, batch {args.batch}; "
          f"written to {path}")  # fmt: skip
    keys = ["layer", "C", "H", "K", "stride", "memory_format", "dtype", "pass_", "impl"]
    headers = ["layer", "C", "H", "K", "s", "layout", "dtype", "pass", "impl", "median ms"]
    print(markdown_table(headers, [[*(r[key] for key in keys), f"{r['median_ms']:.3f}"] for r in rows]))


if __name__ == "__main__":
    main()
