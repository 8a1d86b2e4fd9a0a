"""The most that faster self-calibration kernels can give SCNet: the model, in the same run as its ResNet, then with
the self-calibration costing nothing, then with each self-calibrated conv reduced to one 3x3 conv.

    python -m benchmarks.free_calibration [--models scnet50] [--mode reduce-overhead] [--task train inference]
    python -m benchmarks.free_calibration --mode eager --task inference        # a CPU: latency at batch 1

Measures the baseline ResNet and the model as ``adaptconv benchmark`` does (on a GPU bf16 autocast, channels_last,
batch 128 train / 256 inference; on a CPU fp32 at batch 8 / 1), then the model again with every
``SelfCalibratedConv2d`` computing less:

- ``calibration``: ``K4(K3(x))``: the pooling, K2, the up-sampling and the gate cost nothing (they are skipped), K3
  and K4 stay. No kernel of the calibration can make the model faster than this.
- ``scconv``: ``K4(x)``: K3 skipped too, so each bottleneck is a ResNet bottleneck split in two halves of one 3x3
  conv each (K1 and K4): the speed of SCNet's layout of layers without any of the self-calibration's work.

Both change the function (they are bounds, not models). Each level replaces the method
``adaptconv.ops.SelfCalibration.calibrated`` (K4's input, in both forms of the SC bottleneck); the switches stay on
for the rest of the process, so the levels run in this order. Writes
benchmarks/results/free_calibration[-<name>]-<device>.json and a table.
"""

from __future__ import annotations

import argparse

from torch import Tensor

from adaptconv.ops import SelfCalibration

from . import bound


def _into(result: Tensor, out: Tensor | None) -> Tensor:
    return result if out is None else out.copy_(result)


#: what every ``SelfCalibration`` (K4's input in both forms of the SC bottleneck) computes at each level
FORWARDS = {
    "calibration": lambda self, x, out=None: _into(self.k3(x), out),
    "scconv": lambda self, x, out=None: _into(x, out),
}


def _switch(level: str):
    def use() -> None:
        SelfCalibration.calibrated = FORWARDS[level]

    return use


LEVELS: dict[str, bound.Level] = {level: (_switch(level), "") for level in FORWARDS}


def parser() -> argparse.ArgumentParser:
    return bound.parser("free_calibration", __doc__, ["scnet50"], ["reduce-overhead"], LEVELS)


def main(argv: list[str] | None = None) -> None:
    bound.main(parser().parse_args(argv), LEVELS, cpu=True)


if __name__ == "__main__":
    main()
