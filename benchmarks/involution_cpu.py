"""CPU: the involution's window path against its tap loop, and the automatic choice between them.

    python -m benchmarks.involution_cpu [--repeats 7] [--name SUFFIX]   # writes results/involution_cpu-cpu.json

Two workloads, each with the CPU implementation of the aggregation op forced to one path ("taps", "windows") or
left to choose ("auto", ``adaptconv.ops.involution.cpu.use_windows``),
run alternately in one process, median of the repetitions:
- one SGD training step of the default run's model (RedNet-26 at half width, 28x28 grey, batch 64, as
  ``adaptconv train`` with no arguments);
- RedNet-50 inference at batch 1, 224x224 (the latency on a CPU).

Forcing a path replaces the CPU implementations of the ops ``adaptconv::involution_aggregate`` and
``adaptconv::involution_aggregate_backward`` (``torch.library.register_kernel``); the package's own functions
("auto") are registered again after the runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import adaptconv
from adaptconv.ops.involution import cpu
from adaptconv.ops.involution.reference import involution_aggregate_backward_reference, involution_aggregate_reference

from . import flags, record

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


#: the workloads: name -> the function that makes its step
WORKLOADS = {
    "RedNet-26 width 0.5, 28x28x1, batch 64: one SGD training step": default_run_step,
    "RedNet-50, 224x224, batch 1: inference": rednet50_latency,
}


def parser() -> argparse.ArgumentParser:
    return flags.parser("involution_cpu", __doc__, repeats=7)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    torch.manual_seed(0)
    rows = []
    for workload, make_step in WORKLOADS.items():
        ms = compare(make_step(), args.repeats)
        rows.append(dict(workload=workload, **{f"{path}_ms": t for path, t in ms.items()}))
    print(record.markdown_table(["workload", *(f"{path} ms" for path in PATHS)],
                                [[r["workload"], *(r[f"{path}_ms"] for path in PATHS)] for r in rows]))  # fmt: skip
    print("written to", record.write(args, "cpu", rows))


if __name__ == "__main__":
    main()
