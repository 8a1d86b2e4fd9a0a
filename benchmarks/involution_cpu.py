"""CPU: the involution's window path against its tap loop, and the automatic choice between them.

    python benchmarks/involution_cpu.py     # writes benchmarks/results/involution_cpu.json

Two workloads, each with the CPU implementation of the aggregation op forced to one path ("taps", "windows") or
left to choose ("auto", ``adaptconv.ops.involution.cpu.use_windows``),
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
from adaptconv.benchmark import environment
from adaptconv.ops.involution import cpu
from adaptconv.ops.involution.reference import involution_aggregate_backward_reference, involution_aggregate_reference

#: the CPU implementation of the aggregation op and of its backward under each setting
PATHS = {
    "taps": (involution_aggregate_reference, involution_aggregate_backward_reference),
    "windows": (cpu.aggregate_windows, cpu.aggregate_windows_backward),
    "auto": (cpu.aggregate, cpu.aggregate_backward),
}


def use_path(name: str) -> None:
    """Register the CPU implementations of ``name`` as the ops' (replacing the package's registration)."""
    forward, backward = PATHS[name]
    torch.library.register_kernel("adaptconv::involution_aggregate", "cpu", forward)
    torch.library.register_kernel("adaptconv::involution_aggregate_backward", "cpu", backward)


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
            use_path(name)
            step()  # warm-up of this path
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    use_path("auto")
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
