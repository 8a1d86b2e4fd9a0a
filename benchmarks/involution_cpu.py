"""CPU: the involution's window path against its tap loop, and the automatic choice between them.

    python benchmarks/involution_cpu.py     # writes benchmarks/results/involution_cpu.json

Two workloads, each with the three settings of ``adaptconv.ops.involution_cpu.PATH`` ("taps", "windows", "auto")
run alternately in one process, median of the repetitions:
- one SGD training step of the default run's model (RedNet-26 at half width, 28x28 grey, batch 64, as
  ``adaptconv train`` with no arguments);
- RedNet-50 inference at batch 1, 224x224 (the latency that issue "Speed I" targets on a CPU).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import torch
from _common import RESULTS

import adaptconv
import adaptconv.ops.involution_cpu as cpu_kernels
from adaptconv.benchmark import environment

PATHS = ("taps", "windows", "auto")


def default_run_step(batch: int = 64) -> Callable[[], None]:
    model = adaptconv.create_model("rednet26", num_classes=10, in_chans=1, channels=(32, 64, 128, 256))
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def rednet50_latency() -> Callable[[], None]:
    model = adaptconv.create_model("rednet50").eval()
    x = torch.randn(1, 3, 224, 224)

    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def compare(step: Callable[[], None], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(repeats):
        for name in PATHS:
            cpu_kernels.PATH = name
            step()  # warm-up of this path
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    cpu_kernels.PATH = "auto"
    return {name: round(1000 * statistics.median(t), 1) for name, t in times.items()}


def main(repeats: int = 7) -> None:
    torch.manual_seed(0)
    record = dict(
        environment=environment("cpu"),
        ms={
            "RedNet-26 width 0.5, 28x28x1, batch 64: one SGD training step": compare(default_run_step(), repeats),
            "RedNet-50, 224x224, batch 1: inference": compare(rednet50_latency(), repeats),
        },
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "involution_cpu.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
