"""Speed of the involution aggregation alone at RedNet-50's layer shapes: reference against Triton (and unfold).

Each implementation's forward, and forward + backward, is timed with CUDA events (median of --repeats runs after
--warmup runs; the L2 cache is evicted before each timed run). The achieved bandwidth counts each tensor read or
written once, x + weight + y forward and also grad_y + grad_x + grad_weight forward + backward, and is compared
with the copy bandwidth measured in the same run (2 * bytes / time of ``dst.copy_(src)`` on a large tensor).

    python benchmarks/involution_op.py [--batch 64] [--dtype float32 bfloat16] [--impl reference triton unfold]
                                       [--layers stem layer1 ...] [--memory-format contiguous channels_last]

Writes benchmarks/results/involution_op[<--name>]-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
from _common import IMPLEMENTATIONS, RESULTS, aggregation_step, markdown_table, write_results

from adaptconv.benchmark import environment, median_ms
from adaptconv.ops import involution_output_size

# RedNet-50's involutions (Li et al., CVPR 2021): the stem's 3x3 and each stage's 7x7, the first block of stages
# 2-4 with stride 2. (channels, input size, K, stride); 16 channels a group throughout.
LAYERS = {
    "stem": (32, 112, 3, 1),
    "layer1": (64, 56, 7, 1),
    "layer2.0": (128, 56, 7, 2),
    "layer2": (128, 28, 7, 1),
    "layer3.0": (256, 28, 7, 2),
    "layer3": (256, 14, 7, 1),
    "layer4.0": (512, 14, 7, 2),
    "layer4": (512, 7, 7, 1),
}
GROUP_CHANNELS = 16


def layer_case(layer: str, batch: int, dtype: torch.dtype, layout: str, device: str, fill=torch.randn) -> tuple:
    """The aggregation's tensors at one of RedNet-50's layers: x (N, C, H, H), the kernels w (N, G*K*K, Ho, Wo) and
    an output gradient gy (N, C, Ho, Wo), in ``layout`` ('contiguous' or 'channels_last'), made by ``fill``; and
    the window (K, stride, padding, dilation) with 'same' padding."""
    c, h, k, s = LAYERS[layer]
    conf = (k, s, (k - 1) // 2, 1)
    ho, wo = involution_output_size(h, h, *conf)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x, w, gy = (fill(batch, *shape, device=device, dtype=dtype).contiguous(memory_format=fmt)
                for shape in ((c, h, h), (c // GROUP_CHANNELS * k * k, ho, wo), (c, ho, wo)))  # fmt: skip
    return x, w, gy, conf


def copy_bandwidth(device: str, repeats: int, nbytes: int = 2**30) -> float:
    """Bytes per second of a device-to-device copy: 2 * nbytes read and written over the median time."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return 2 * nbytes / (median_ms(lambda: dst.copy_(src), device, repeats) * 1e-3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--impl", nargs="+", default=["reference", "triton"], choices=list(IMPLEMENTATIONS))
    ap.add_argument(
        "--memory-format",
        nargs="+",
        default=["contiguous", "channels_last"],
        choices=["contiguous", "channels_last"],
        help="of x and the kernels (and so of the gradients)",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs first (the Triton autotuner runs in these)")
    ap.add_argument("--no-flush", action="store_true", help="keep the L2 cache warm between timed runs")
    ap.add_argument("--name", default="", help="suffix of the output file")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.repeats < 20:
        ap.error("--repeats must be at least 20")
    dev = args.device
    # Writing a buffer larger than the L2 cache evicts the previous run's tensors from it.
    flush_buffer = None if args.no_flush or dev != "cuda" else torch.empty(2**28, dtype=torch.uint8, device=dev)
    before = None if flush_buffer is None else flush_buffer.zero_
    copy_bps = copy_bandwidth(dev, args.repeats)
    rows = []
    for layer, fmt_name, dtype_name in itertools.product(args.layers, args.memory_format, args.dtype):
        c, h = LAYERS[layer][:2]
        x, w, gy, (k, s, p, d) = layer_case(layer, args.batch, getattr(torch, dtype_name), fmt_name, dev)
        y_bytes = gy.nbytes
        for backward in (False, True):
            # x + weight + y; forward + backward also reads grad_y and writes grad_x and grad_weight.
            nbytes = (x.nbytes + w.nbytes + y_bytes) * (2 if backward else 1)
            for impl in args.impl:
                ms = median_ms(
                    aggregation_step(impl, x, w, (k, s, p, d), backward), dev, args.repeats, args.warmup, before
                )
                rows.append(
                    dict(layer=layer, C=c, H=h, K=k, stride=s, memory_format=fmt_name, dtype=dtype_name,
                         pass_="fwd+bwd" if backward else "fwd", impl=impl, median_ms=ms, bytes=nbytes,
                         GBps=nbytes / ms / 1e6, fraction_of_copy=nbytes / (ms * 1e-3) / copy_bps)
                )  # fmt: skip
        del x, w, gy
    meta = dict(
        **environment(dev),
        batch=args.batch,
        group_channels=GROUP_CHANNELS,
        repeats=args.repeats,
        warmup=args.warmup,
        l2_flush=before is not None,
        copy_GBps=copy_bps / 1e9,
        layers={name: dict(zip(("C", "H", "K", "stride"), LAYERS[name], strict=True)) for name in args.layers},
    )
    path = write_results(f"involution_op{args.name}", dev, meta, rows, args.out)
    print(f"{meta['device']}, torch {meta['torch']}, triton {meta['triton']}, {meta['date']}, batch {args.batch}, "
          f"copy bandwidth {meta['copy_GBps']:.0f} GB/s; written to {path}")  # fmt: skip
    headers = ["layer", "C", "H", "K", "s", "layout", "dtype", "pass", "impl", "median ms", "GB/s", "% of copy"]
    keys = ["layer", "C", "H", "K", "stride", "memory_format", "dtype", "pass_", "impl"]
    table = [
        [*(r[key] for key in keys), f"{r['median_ms']:.3f}", f"{r['GBps']:.0f}", f"{100 * r['fraction_of_copy']:.0f}"]
        for r in rows
    ]
    print(markdown_table(headers, table))


if __name__ == "__main__":
    main()
