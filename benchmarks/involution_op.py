"""Speed of the involution aggregation alone at RedNet-50's layer shapes: reference against Triton, the NVRTC-compiled
CUDA C++ kernels (channels_last only) and unfold.

Each implementation's forward, and forward + backward, is timed with CUDA events (median of --repeats runs after
--warmup runs; the L2 cache is evicted before each timed run). The achieved bandwidth counts each tensor read or
written once, x + weight + y forward and also grad_y + grad_x + grad_weight forward + backward, and is compared
with the copy bandwidth measured in the same run (2 * bytes / time of ``dst.copy_(src)`` on a large tensor).

    python -m benchmarks.involution_op [--batch-size 64] [--dtype fp32 bf16] [--impl reference triton nvrtc unfold]
                                       [--layers stem layer1 ...] [--layout nchw channels_last] [--name SUFFIX]

Writes benchmarks/results/involution_op[-<name>]-<device>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools

import torch

from adaptconv.benchmark import median_ms

from . import flags, record
from .aggregation import GROUP_CHANNELS, IMPLEMENTATIONS, LAYERS, aggregation_step, layer_case, layers_parser


def copy_bandwidth(device: str, repeats: int, nbytes: int = 2**30) -> float:
    """Bytes per second of a device-to-device copy: 2 * nbytes read and written over the median time."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return 2 * nbytes / (median_ms(lambda: dst.copy_(src), device, repeats) * 1e-3)


def parser() -> argparse.ArgumentParser:
    ap = layers_parser("involution_op", __doc__)
    ap.add_argument("--impl", nargs="+", default=["reference", "triton"],
                    choices=["reference", "triton", "nvrtc", "unfold"])  # fmt: skip
    ap.add_argument("--no-flush", action="store_true", help="keep the L2 cache warm between timed runs")
    return ap


def main(argv: list[str] | None = None) -> None:
    ap = parser()
    args = ap.parse_args(argv)
    if args.repeats < 20:
        ap.error("--repeats must be at least 20")
    missing = [impl for impl in args.impl if impl not in IMPLEMENTATIONS]
    if missing:
        ap.error(f"--impl {' '.join(missing)}: not available here (Triton or NVRTC is not installed)")
    if "nvrtc" in args.impl and args.layout != ["channels_last"]:
        ap.error("--impl nvrtc times channels_last tensors only: give --layout channels_last")
    dev = args.device
    # Writing a buffer larger than the L2 cache evicts the previous run's tensors from it.
    flush_buffer = None if args.no_flush or dev != "cuda" else torch.empty(2**28, dtype=torch.uint8, device=dev)
    before = None if flush_buffer is None else flush_buffer.zero_
    copy_bps = copy_bandwidth(dev, args.repeats)
    rows = []
    for layer, layout, dtype in itertools.product(args.layers, args.layout, args.dtype):
        c, h = LAYERS[layer][:2]
        x, w, gy, (k, s, p, d) = layer_case(layer, args.batch_size, flags.TORCH_DTYPES[dtype], layout, dev)
        for backward in (False, True):
            # x + weight + y; forward + backward also reads grad_y and writes grad_x and grad_weight.
            nbytes = (x.nbytes + w.nbytes + gy.nbytes) * (2 if backward else 1)
            for impl in args.impl:
                step = aggregation_step(impl, x, w, (k, s, p, d), backward)
                ms = median_ms(step, dev, args.repeats, args.warmup, before)
                rows.append(dict(layer=layer, C=c, H=h, K=k, stride=s, layout=layout, dtype=dtype,
                                 pass_="fwd+bwd" if backward else "fwd", impl=impl, median_ms=ms, bytes=nbytes,
                                 GBps=nbytes / ms / 1e6, fraction_of_copy=nbytes / (ms * 1e-3) / copy_bps))  # fmt: skip
        del x, w, gy
    layers = {name: dict(zip(("C", "H", "K", "stride"), LAYERS[name], strict=True)) for name in args.layers}
    path = record.write(args, dev, rows, group_channels=GROUP_CHANNELS, l2_flush=before is not None,
                        copy_GBps=copy_bps / 1e9, layers=layers)  # fmt: skip
    print(f"batch {args.batch_size}, copy bandwidth {copy_bps / 1e9:.0f} GB/s; written to {path}")
    headers = ["layer", "C", "H", "K", "s", "layout", "dtype", "pass", "impl", "median ms", "GB/s", "% of copy"]
    keys = ["layer", "C", "H", "K", "stride", "layout", "dtype", "pass_", "impl"]
    print(record.markdown_table(headers, [
        [*(r[key] for key in keys), f"{r['median_ms']:.3f}", f"{r['GBps']:.0f}", f"{100 * r['fraction_of_copy']:.0f}"]
        for r in rows
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
