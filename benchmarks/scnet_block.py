"""One bottleneck's forward + backward: SCNet's (merged layers with the fused calibration ops or the official code's
separate ops; the official code's layers with either) against ResNet-50's, at SCNet-50's first-stage shape (batch
64, 256 channels, 56 x 56, planes 64; bf16 autocast, channels_last on a GPU), eager and compiled.

    python -m benchmarks.scnet_block [--batch-size 64] [--size 56] [--mode eager compile] [--name SUFFIX]

Writes benchmarks/results/scnet_block[-<name>]-<device>.json.
"""

from __future__ import annotations

import argparse

import torch
from timm.models.resnet import Bottleneck

from adaptconv.benchmark import median_ms
from adaptconv.models import OfficialSCBottleneck, SCBottleneck

from . import flags, record

BLOCKS = {
    "scnet (fused)": lambda: SCBottleneck(256, 64, fused_calibration=True),
    "scnet (official ops)": lambda: SCBottleneck(256, 64, fused_calibration=False),
    "scnet (official layers, fused)": lambda: OfficialSCBottleneck(256, 64, fused_calibration=True),
    "scnet (official layers and ops)": lambda: OfficialSCBottleneck(256, 64, fused_calibration=False),
    "resnet50": lambda: Bottleneck(256, 64),
}


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("scnet_block", __doc__, batch_size=64, mode=["eager", "compile"], repeats=50,
                      device=flags.default_device())  # fmt: skip
    ap.add_argument("--size", type=int, default=56, help="side of the feature map")
    return ap


def main(argv: list[str] | None = None) -> None:
    ap = parser()
    args = ap.parse_args(argv)
    if "reduce-overhead" in args.mode:
        ap.error("--mode: eager or compile")
    gpu = args.device == "cuda"
    fmt = torch.channels_last if gpu else torch.contiguous_format
    x = torch.randn(args.batch_size, 256, args.size, args.size, device=args.device).to(memory_format=fmt)
    x.requires_grad_(True)
    rows = []
    for mode in args.mode:
        for name, build in BLOCKS.items():
            torch.compiler.reset()
            block = build().to(args.device, memory_format=fmt).train()
            run = torch.compile(block) if mode == "compile" else block
            grad = torch.randn_like(x)

            def step(run=run, grad=grad) -> None:
                with torch.autocast(args.device, dtype=torch.bfloat16, enabled=gpu):
                    out = run(x)
                out.backward(grad)

            ms = median_ms(step, args.device, args.repeats, warmup=5)
            rows.append(dict(block=name, mode=mode, ms=ms))
            print(f"{name:32s} {mode:8s} {ms:.3f} ms", flush=True)
    table = [[r["block"], r["mode"], f"{r['ms']:.3f}"] for r in rows]
    print(record.markdown_table(["block", "mode", "fwd+bwd ms"], table))
    path = record.write(args, args.device, rows, dtype="bf16" if gpu else "fp32",
                        layout="channels_last" if gpu else "nchw")  # fmt: skip
    print("written to", path)


if __name__ == "__main__":
    main()
