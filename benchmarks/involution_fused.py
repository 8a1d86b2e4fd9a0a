"""Speed of the fused involution path against span conv + aggregation, at RedNet-50's layer shapes.

"unfused" is what ``Involution2d`` does by default: the span 1x1 conv writes the (N, G*K*K, H_out, W_out) kernels
and the aggregation reads them; "fused" is ``involution_fused``, whose forward computes the kernels inside the
aggregation kernel. Both from the reduced features (N, C/4, H_out, W_out) on, forward and forward + backward
(autograd), timed as in involution_op.py (CUDA events, median, L2 evicted before each timed run).

    python -m benchmarks.involution_fused [--batch-size 64] [--dtype fp32 bf16] [--layers ...] [--layout ...]

Writes benchmarks/results/involution_fused[-<name>]-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools

import torch
import torch.nn.functional as F

from adaptconv.benchmark import LAYOUTS, median_ms
from adaptconv.ops import involution_aggregate, involution_fused, involution_output_size

from . import flags, record
from .aggregation import GROUP_CHANNELS, LAYERS, layers_parser


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


def parser() -> argparse.ArgumentParser:
    return layers_parser("involution_fused", __doc__)


def main(argv: list[str] | None = None) -> None:
    ap = parser()
    args = ap.parse_args(argv)
    if args.repeats < 20:
        ap.error("--repeats must be at least 20")
    dev = args.device
    flush = torch.empty(2**28, dtype=torch.uint8, device=dev).zero_ if dev == "cuda" else None
    rows = []
    for layer, layout, dtype_name in itertools.product(args.layers, args.layout, args.dtype):
        c, h, k, s = LAYERS[layer]
        conf = (k, s, (k - 1) // 2, 1)
        ho, wo = involution_output_size(h, h, *conf)
        fmt, dtype = LAYOUTS[layout], flags.TORCH_DTYPES[dtype_name]
        taps = c // GROUP_CHANNELS * k * k
        inputs = [
            torch.randn(args.batch_size, c, h, h, device=dev, dtype=dtype).contiguous(memory_format=fmt),
            torch.randn(args.batch_size, c // 4, ho, wo, device=dev, dtype=dtype).contiguous(memory_format=fmt),
            torch.randn(taps, c // 4, device=dev, dtype=dtype) / (c // 4) ** 0.5,
            torch.randn(taps, device=dev, dtype=dtype),
        ]
        for backward, (impl, fn) in itertools.product(
            (False, True), [("unfused", unfused), ("fused", involution_fused)]
        ):
            ms = median_ms(step_for(fn, inputs, conf, backward), dev, args.repeats, args.warmup, flush)
            rows.append(dict(layer=layer, C=c, H=h, K=k, stride=s, layout=layout, dtype=dtype_name,
                             pass_="fwd+bwd" if backward else "fwd", impl=impl, median_ms=ms))  # fmt: skip
        del inputs
    path = record.write(args, dev, rows, group_channels=GROUP_CHANNELS, reduction=4, l2_flush=flush is not None)
    print(f"batch {args.batch_size}; written to {path}")
    keys = ["layer", "C", "H", "K", "stride", "layout", "dtype", "pass_", "impl"]
    headers = ["layer", "C", "H", "K", "s", "layout", "dtype", "pass", "impl", "median ms"]
    print(record.markdown_table(headers, [[*(r[key] for key in keys), f"{r['median_ms']:.3f}"] for r in rows]))


if __name__ == "__main__":
    main()
