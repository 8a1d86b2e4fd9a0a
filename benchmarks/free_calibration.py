"""The most that faster self-calibration kernels can give SCNet: the model, in the same run as its ResNet, then with
the self-calibration costing nothing, then with each self-calibrated conv reduced to one 3x3 conv.

    python benchmarks/free_calibration.py [--models scnet50] [--modes reduce-overhead] [--tasks train inference]

Measures the baseline ResNet and the model as ``adaptconv benchmark`` does (bf16 autocast, channels_last, batch
128 train / 256 inference), then the model again with every ``SelfCalibratedConv2d`` computing less:

- ``calibration``: ``K4(K3(x))``: the pooling, K2, the up-sampling and the gate cost nothing (they are skipped), K3
  and K4 stay. No kernel of the calibration can make the model faster than this.
- ``scconv``: ``K4(x)``: K3 skipped too, so each bottleneck is a ResNet bottleneck split in two halves of one 3x3
  conv each (K1 and K4), joined by the concatenation: the speed of SCNet's layout of layers without any of the
  self-calibration's work.

Both change the function (they are bounds, not models). The switches stay on for the rest of the process, so the
levels run in this order. Writes benchmarks/results/free_calibration<name>-cuda.json and a table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import RESULTS, markdown_table, write_results

from adaptconv.benchmark import MODES, Setting, environment, measure, run
from adaptconv.benchmark.harness import _ratio
from adaptconv.ops import SelfCalibratedConv2d

LEVELS = {
    "calibration": lambda self, x: self.k4(self.k3(x)),
    "scconv": lambda self, x: self.k4(x),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["scnet50"])
    ap.add_argument("--tasks", nargs="+", default=["train", "inference"], choices=["train", "inference"])
    ap.add_argument("--modes", nargs="+", default=["reduce-overhead"], choices=MODES)
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=LEVELS)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--name", default="", help="suffix of the results file's name")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    batches = dict(train=128, inference=256) if gpu else dict(train=8, inference=1)
    todo = [Setting(m, t, batches[t], "bf16" if gpu else "fp32", "channels_last" if gpu else "nchw", mode)
            for m in args.models for t in args.tasks for mode in args.modes]  # fmt: skip
    rows = run(todo, device, repeats=args.repeats)
    for level in [lv for lv in LEVELS if lv in args.levels]:  # in LEVELS' order
        SelfCalibratedConv2d.forward = LEVELS[level]
        for row, s in zip(rows, todo, strict=True):
            print(f"measuring {s.model} {s.task} {s.mode} with free {level}")
            free = measure(s, device, args.repeats)
            row.update({f"free_{level}_{k}": free[k] for k in ("ms", "img_s", "peak_mib", "error")})
            row[f"free_{level}_speed_ratio"] = _ratio(free["img_s"], row["baseline_img_s"])
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print(markdown_table(
        ["model", "task", "mode", "baseline img/s", "model img/s (x)",
         *(f"free {level} img/s (x)" for level in args.levels)],
        [[r["model"], r["task"], r["mode"], fmt(r["baseline_img_s"], ".0f"),
          f"{fmt(r['img_s'], '.0f')} ({fmt(r['speed_ratio'], '.2f')})",
          *(f"{fmt(r[f'free_{lv}_img_s'], '.0f')} ({fmt(r[f'free_{lv}_speed_ratio'], '.2f')})"
            for lv in args.levels)] for r in rows]))  # fmt: skip
    meta = dict(**environment(device), repeats=args.repeats)
    print("written to", write_results("free_calibration" + args.name, device, meta, rows, args.out))


if __name__ == "__main__":
    main()
