"""The two windowed average pools at their models' shapes: PyTorch's ``avg_pool2d`` against the package's two fast
paths, which do the same thing by different means.

    python -m benchmarks.stride_pool [--window 2] [--batch-size 128] [--dtype bf16] [--repeats 50] [--name SUFFIX]

``--window 2``: the kernel generator of each stride-2 involution averages its input over 2x2 windows (RedNet-50's
shapes); ``--window 4``: SCNet-50's K2 branch averages over 4x4 windows. Times PyTorch's ``avg_pool2d``,
``adaptconv.layers.stride_avg_pool`` (a window mean of channels_last CUDA maps, what the involution uses; only
on maps the window divides) and the ``adaptconv::calibration_pool`` op (Triton kernels on CUDA channels_last maps,
what SCNet uses), forward and forward + backward, channels_last. On maps the window divides all three compute the
same average. Writes benchmarks/results/stride_pool[-window4][-<name>]-<device>.json.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from adaptconv.benchmark import median_ms
from adaptconv.layers import stride_avg_pool

from . import flags, record

#: window -> (layer, channels, side) of the pooled inputs: RedNet-50's stride-2 involutions, SCNet-50's K2 branches
SHAPES = {
    2: [("layer2.0", 128, 56), ("layer3.0", 256, 28), ("layer4.0", 512, 14)],
    4: [("layer1", 32, 56), ("layer2", 64, 28), ("layer3", 128, 14), ("layer4", 256, 7)],
}


def pools(window: int) -> dict:
    return {
        "avg_pool2d": lambda x: F.avg_pool2d(x, window, window, ceil_mode=window == 2, count_include_pad=False),
        "stride_avg_pool": lambda x: stride_avg_pool(x, window),
        "calibration_pool": lambda x: torch.ops.adaptconv.calibration_pool(x, window, window),
    }


def step(pool, x: torch.Tensor, grad: torch.Tensor | None):
    def run() -> None:
        if grad is None:
            with torch.no_grad():
                pool(x)
        else:
            torch.autograd.grad(pool(x), x, grad)

    return run


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("stride_pool", __doc__, batch_size=128, dtype="bf16", repeats=50, device=flags.default_device())
    ap.add_argument("--window", type=int, default=2, choices=sorted(SHAPES))
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    dtype = flags.TORCH_DTYPES[args.dtype]
    window, rows = args.window, []
    for layer, c, side in SHAPES[window]:
        x = torch.randn(args.batch_size, c, side, side, device=args.device, dtype=dtype)
        x = x.to(memory_format=torch.channels_last).requires_grad_()
        row = dict(layer=layer, channels=c, side=side)
        for name, pool in pools(window).items():
            if name == "stride_avg_pool" and side % window:
                continue  # ceil mode there: another average than the others'
            grad = torch.randn_like(pool(x))
            row[f"{name}_fwd_us"] = 1e3 * median_ms(step(pool, x, None), args.device, args.repeats)
            row[f"{name}_fwd_bwd_us"] = 1e3 * median_ms(step(pool, x, grad), args.device, args.repeats)
        rows.append(row)
    names = list(pools(window))
    us = lambda r, key: "-" if key not in r else f"{r[key]:.0f}"  # noqa: E731
    print(record.markdown_table(["layer", "C", "side", *(f"{p} {k} us" for p in names for k in ("fwd", "fwd+bwd"))],
                                [[r["layer"], r["channels"], r["side"],
                                  *(us(r, f"{p}_{k}_us") for p in names for k in ("fwd", "fwd_bwd"))]
                                 for r in rows]))  # fmt: skip
    parts = () if window == 2 else (f"window{window}",)
    print("written to", record.write(args, args.device, rows, parts, layout="channels_last"))


if __name__ == "__main__":
    main()
