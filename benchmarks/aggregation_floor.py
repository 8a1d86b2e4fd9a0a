"""The least time a whole model's involutions can take at a given memory bandwidth: the bytes they must move.

    python -m benchmarks.aggregation_floor [--models rednet50] [--batch-size 128] [--bytes-per-value 2]
                                           [--copy-results benchmarks/results/involution_op-band_vs_pixel-cuda.json]

Runs the model on the meta device (no data, any machine) and records each involution's tensors. For the
stored-kernel design the aggregation must read x and the kernels and write y (forward), read the output gradient,
x and the kernels and write both gradients (backward); for the fused design (``Involution2d(fused=True)``) the
reduced features take the place of the kernels (the span conv runs inside the kernel). Those bytes over the
copy bandwidth that ``involution_op.py`` measured (read from its results file, or ``--copy-gbps``) are the floor:
no kernel of that design can be faster. A last row counts the stored kernels' own traffic (written by the span
conv, read forward and backward, their gradient written and read back): the least the stored-kernel design adds to
a layer that only moves its input and output (``free_aggregation.py --levels copy``). The span conv's arithmetic is
not counted (on tensor cores it takes a small fraction of the memory time). Prints the floor per design and pass;
writes no results file (its inputs are the model and a results file already written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from adaptconv.models import create_model
from adaptconv.ops import Involution2d

from . import flags, record


def involution_tensors(model: str, batch: int, img_size: int = 224) -> list[dict]:
    """Per involution: the numbers of values of x, y, the stored kernels and the reduced features."""
    net = create_model(model, num_classes=1000).to("meta")
    found = []

    def record_tensors(m: Involution2d, inputs, output) -> None:
        pixels = output.numel() // m.channels  # N * H_out * W_out: the kernels and reduced features are per output
        found.append(dict(x=inputs[0].numel(), y=output.numel(), kernels=pixels * m.span.out_channels,
                          reduced=pixels * m.span.in_channels))  # fmt: skip

    for m in net.modules():
        if isinstance(m, Involution2d):
            m.register_forward_hook(record_tensors)
    with torch.no_grad():
        net(torch.empty(batch, 3, img_size, img_size, device="meta"))
    return found


def floor_bytes(tensors: list[dict], bytes_per_value: int) -> dict[str, int]:
    """Bytes moved by all the involutions, per design and pass; and, for the stored-kernel design, the kernels' own
    traffic, which the fused design does not have: the span conv writes them, the aggregation reads them forward
    and backward and writes their gradient, which the span conv's backward reads (5 passes)."""
    out = {}
    for design, gen in (("stored kernels", "kernels"), ("fused", "reduced")):
        fwd = sum(t["x"] + t[gen] + t["y"] for t in tensors)
        bwd = sum(t["y"] + 2 * t["x"] + 2 * t[gen] for t in tensors)
        out[f"{design}, forward"] = fwd * bytes_per_value
        out[f"{design}, forward + backward"] = (fwd + bwd) * bytes_per_value
    out["stored kernels, the kernels alone, forward + backward"] = (
        5 * sum(t["kernels"] for t in tensors) * bytes_per_value
    )
    return out


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("aggregation_floor", __doc__, results=False, models=["rednet50"], batch_size=128, img_size=224)
    ap.add_argument("--bytes-per-value", type=int, default=2, help="2 for bf16/fp16")
    ap.add_argument("--copy-results", type=Path, default=flags.RESULTS / "involution_op-band_vs_pixel-cuda.json",
                    help="a results file of involution_op.py, for its copy bandwidth")  # fmt: skip
    ap.add_argument("--copy-gbps", type=float, help="copy bandwidth (read + write), instead of the results file's")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.copy_gbps:
        gbps, source = args.copy_gbps, "--copy-gbps"
    else:
        copy = record.load(args.copy_results)
        gbps, source = copy["copy_GBps"], f"{args.copy_results.name} ({copy['device']}, {copy['date']})"
    for model in args.models:
        tensors = involution_tensors(model, args.batch_size, args.img_size)
        print(f"{model}, batch {args.batch_size}, {len(tensors)} involutions, {args.bytes_per_value} bytes a value, "
              f"copy bandwidth {gbps:.0f} GB/s from {source}")  # fmt: skip
        floors = floor_bytes(tensors, args.bytes_per_value)
        rows = [[what, f"{n / 1e6:.0f}", f"{n / (gbps * 1e9) * 1e3:.2f}"] for what, n in floors.items()]
        print(record.markdown_table(["design, pass", "MB", "floor ms"], rows))


if __name__ == "__main__":
    main()
