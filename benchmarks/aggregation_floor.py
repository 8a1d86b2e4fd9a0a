"""The least time a whole model's involutions can take at a given memory bandwidth: the bytes they must move.

    python benchmarks/aggregation_floor.py [--model rednet50] [--batch 128] [--bytes-per-value 2]
                                           [--copy-results benchmarks/results/involution_op-band_vs_pixel-cuda.json]

Runs the model on the meta device (no data, any machine) and records each involution's tensors. For the
stored-kernel design the aggregation must read x and the kernels and write y (forward), read the output gradient,
x and the kernels and write both gradients (backward); for the fused design (``Involution2d(fused=True)``) the
reduced features take the place of the kernels (the span conv runs inside the kernel). Those bytes over the
copy bandwidth that ``involution_op.py`` measured (read from its results file, or ``--copy-gbps``) are the floor:
no kernel of that design can be faster. A last row counts the stored kernels' own traffic (written by the span
conv, read forward and backward, their gradient written and read back): the least the stored-kernel design adds to
a layer that only moves its input and output (``free_aggregation.py --levels copy``). The span conv's arithmetic is
not counted (on tensor cores it takes a small fraction of the memory time). Prints the floor per design and pass.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _common import RESULTS, markdown_table

from adaptconv.models import create_model
from adaptconv.ops import Involution2d


def involution_tensors(model: str, batch: int, img_size: int = 224) -> list[dict]:
    """Per involution: the numbers of values of x, y, the stored kernels and the reduced features."""
    net = create_model(model, num_classes=1000).to("meta")
    found = []

    def record(m: Involution2d, inputs, output) -> None:
        pixels = output.numel() // m.channels  # N * H_out * W_out: the kernels and reduced features are per output
        found.append(dict(x=inputs[0].numel(), y=output.numel(), kernels=pixels * m.span.out_channels,
                          reduced=pixels * m.span.in_channels))  # fmt: skip

    for m in net.modules():
        if isinstance(m, Involution2d):
            m.register_forward_hook(record)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="rednet50")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--bytes-per-value", type=int, default=2, help="2 for bf16/fp16")
    ap.add_argument("--copy-results", type=Path, default=RESULTS / "involution_op-band_vs_pixel-cuda.json")
    ap.add_argument("--copy-gbps", type=float, help="copy bandwidth (read + write), instead of the results file's")
    args = ap.parse_args()
    if args.copy_gbps:
        gbps, source = args.copy_gbps, "--copy-gbps"
    else:
        meta = json.loads(args.copy_results.read_text())["meta"]
        gbps, source = meta["copy_GBps"], f"{args.copy_results.name} ({meta['device']}, {meta['date']})"
    tensors = involution_tensors(args.model, args.batch)
    print(f"{args.model}, batch {args.batch}, {len(tensors)} involutions, {args.bytes_per_value} bytes a value, "
          f"copy bandwidth {gbps:.0f} GB/s from {source}")  # fmt: skip
    floors = floor_bytes(tensors, args.bytes_per_value)
    rows = [[what, f"{n / 1e6:.0f}", f"{n / (gbps * 1e9) * 1e3:.2f}"] for what, n in floors.items()]
    print(markdown_table(["design, pass", "MB", "floor ms"], rows))


if __name__ == "__main__":
    main()
