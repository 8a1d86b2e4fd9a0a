"""One bottleneck's forward + backward: SCNet's (fused calibration ops, and the official code's separate ops) against
ResNet-50's, at the issue's shape (batch 64, 256 channels, 56 x 56, planes 64; bf16 autocast, channels_last on a
GPU), eager and compiled.

    python benchmarks/scnet_block.py [--batch 64] [--size 56] [--modes eager compile]

Writes benchmarks/results/scnet_block-<device>.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import RESULTS, markdown_table, write_results
from timm.models.resnet import Bottleneck

from adaptconv.benchmark import environment, median_ms
from adaptconv.models.scnet import SCBottleneck

BLOCKS = {
    "scnet (fused)": lambda: SCBottleneck(256, 64),
    "scnet (official ops)": lambda: _unfused(SCBottleneck(256, 64)),
    "resnet50": lambda: Bottleneck(256, 64),
}


def _unfused(block: SCBottleneck) -> SCBottleneck:
    block.scconv.fused = False
    return block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    gpu = args.device == "cuda"
    fmt = torch.channels_last if gpu else torch.contiguous_format
    x = torch.randn(args.batch, 256, args.size, args.size, device=args.device).to(memory_format=fmt)
    x.requires_grad_(True)
    rows = []
    for mode in args.modes:
        for name, build in BLOCKS.items():
            torch._dynamo.reset()
            block = build().to(args.device, memory_format=fmt).train()
            run = torch.compile(block) if mode == "compile" else block
            grad = torch.randn_like(x)

            def step(run=run, grad=grad) -> None:
                with torch.autocast(args.device, dtype=torch.bfloat16, enabled=gpu):
                    out = run(x)
                out.backward(grad)

            ms = median_ms(step, args.device, args.repeats, warmup=5)
            rows.append(dict(block=name, mode=mode, ms=ms))
            print(f"{name:22s} {mode:8s} {ms:.3f} ms", flush=True)
    meta = dict(**environment(args.device), batch=args.batch, size=args.size, dtype="bf16" if gpu else "fp32",
                layout="channels_last" if gpu else "nchw")  # fmt: skip
    print(markdown_table(["block", "mode", "fwd+bwd ms"], [[r["block"], r["mode"], f"{r['ms']:.3f}"] for r in rows]))
    print("written to", write_results("scnet_block", args.device, meta, rows, args.out))


if __name__ == "__main__":
    main()
