"""Every tuning configuration of the Triton aggregation kernels at RedNet-50's layer shapes, timed one by one.

The autotuner keeps only the fastest configuration of each shape; this script shows all of them, so that a kernel
variant chosen by a compile-time flag in the configurations (e.g. the pixel-block kernels' DEFER_TAP_SUM) can be
compared directly: the forward and the backward (both gradients, one launch) of each configuration, median of
--repeats runs with the L2 cache evicted before each.

    python benchmarks/involution_configs.py [--layout channels_last] [--dtype bfloat16] [--batch 64]
                                            [--family band] [--config BLOCK_P=128,DEFER_TAP_SUM=False,warps=4 ...]

--family times another family's GPU_CONFIGS than the layout's (the band kernels: half precision only); --config
times the given configurations instead (candidates for such a list; their keys name the family).

Writes benchmarks/results/involution_configs-<layout>-<device>.json and prints, per layer and pass, each
configuration's time and the best one of each value of the flag.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import torch
import triton
from _common import RESULTS, markdown_table, write_results
from involution_op import GROUP_CHANNELS, LAYERS, layer_case

from adaptconv.benchmark import environment, median_ms
from adaptconv.ops.involution_triton import (
    FAMILIES,
    involution_aggregate_backward_triton,
    involution_aggregate_triton,
    kernel_module,
)


def _parse_config(text: str) -> triton.Config:
    """'BLOCK_P=128,DEFER_TAP_SUM=False,warps=4' -> triton.Config({'BLOCK_P': 128, 'DEFER_TAP_SUM': False}, 4)."""
    kwargs = {}
    for item in text.split(","):
        key, value = item.split("=")
        kwargs[key] = value == "True" if value in ("True", "False") else int(value)
    warps = kwargs.pop("warps", 4)
    return triton.Config(kwargs, num_warps=warps)


def _describe(config) -> str:
    return " ".join(f"{k}={v}" for k, v in config.kwargs.items()) + f" warps={config.num_warps}"


def timed_configs(layout: str, family: str | None, given: list | None) -> list:
    """The configurations to time: ``given``, else the GPU_CONFIGS of ``family`` (default: the layout's family). The
    launchers tell a configuration's family by its keys, so band or spatial-tile ones run those kernels."""
    family = family or ("pixel" if layout == "channels_last" else "tile")
    return given or kernel_module(family).GPU_CONFIGS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", default="channels_last", choices=["contiguous", "channels_last"])
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--family", choices=FAMILIES, help="default: the layout's (pixel or tile)")
    ap.add_argument("--config", nargs="+", type=_parse_config, help="KEY=VALUE,...,warps=N (default: GPU_CONFIGS)")
    ap.add_argument("--name", default="", help="suffix of the output file")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("needs a CUDA device (the configurations are GPU tile shapes)")
    configs = timed_configs(args.layout, args.family, args.config)
    dtype = getattr(torch, args.dtype)
    flush = torch.empty(2**28, dtype=torch.uint8, device="cuda").zero_
    rows = []
    for layer in args.layers:
        x, w, gy, conf = layer_case(layer, args.batch, dtype, args.layout, "cuda")
        for config in configs:
            steps = {
                "fwd": functools.partial(involution_aggregate_triton, x, w, *conf, config=config),
                "bwd": functools.partial(involution_aggregate_backward_triton, gy, x, w, *conf, config=config),
            }
            for pass_, step in steps.items():
                ms = median_ms(step, "cuda", args.repeats, 3, flush)
                rows.append(dict(layer=layer, pass_=pass_, config=_describe(config), **config.kwargs, ms=ms))
    meta = dict(**environment("cuda"), layout=args.layout, dtype=args.dtype, batch=args.batch,
                group_channels=GROUP_CHANNELS, repeats=args.repeats)  # fmt: skip
    path = write_results(f"involution_configs-{args.layout}{args.name}", "cuda", meta, rows, args.out)
    print(f"{meta['device']}, torch {meta['torch']}, triton {meta['triton']}, {meta['date']}, {args.layout}, "
          f"{args.dtype}, batch {args.batch}; written to {path}")  # fmt: skip
    print(markdown_table(["layer", "pass", "config", "ms"],
                         [[r["layer"], r["pass_"], r["config"], f"{r['ms']:.4f}"] for r in rows]))  # fmt: skip
    # The best configuration for each value of each flag (a boolean compile-time argument) that the configs vary.
    flags = [key for key, value in configs[0].kwargs.items()
             if isinstance(value, bool) and len({cfg.kwargs[key] for cfg in configs}) > 1]  # fmt: skip
    for flag in flags:
        best = []
        for layer in args.layers:
            for pass_ in ("fwd", "bwd"):
                mine = [r for r in rows if r["layer"] == layer and r["pass_"] == pass_]
                per_value = {v: min(r["ms"] for r in mine if r[flag] == v) for v in sorted({r[flag] for r in mine})}
                best.append([layer, pass_, *(f"{ms:.4f}" for ms in per_value.values())])
        print(f"\nbest ms per value of {flag} ({', '.join(map(str, per_value))}):")
        print(markdown_table(["layer", "pass", *map(str, per_value)], best))


if __name__ == "__main__":
    main()
