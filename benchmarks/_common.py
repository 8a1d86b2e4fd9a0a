"""Helpers the benchmark scripts share: the aggregation implementations, timing, the environment, the output."""

from __future__ import annotations

import datetime
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from adaptconv.ops import involution_aggregate_unfold, involution_triton
from adaptconv.ops.involution_aggregate import involution_aggregate_backward_reference, involution_aggregate_reference

RESULTS = Path(__file__).parent / "results"

#: implementations of the aggregation that can be timed: forward and (gradient, x, weight, conf) -> (gx, gw)
IMPLEMENTATIONS = {
    "reference": (involution_aggregate_reference, involution_aggregate_backward_reference),
    "triton": (involution_triton.involution_aggregate_triton, involution_triton.involution_aggregate_backward_triton),
    "unfold": (involution_aggregate_unfold, None),  # its backward is autograd's
}


def aggregation_step(impl: str, x: torch.Tensor, weight: torch.Tensor, conf: tuple, backward: bool) -> Callable:
    """A function that runs one forward (and backward) pass of ``impl`` on fixed inputs; the gradient is made here."""
    forward, backward_fn = IMPLEMENTATIONS[impl]
    with torch.no_grad():
        grad = torch.randn_like(forward(x, weight, *conf)) if backward else None

    def step() -> None:
        if not backward:
            with torch.no_grad():
                forward(x, weight, *conf)
        elif backward_fn is not None:
            forward(x, weight, *conf)
            backward_fn(grad, x, weight, *conf)
        else:
            xg, wg = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
            torch.autograd.grad(forward(xg, wg, *conf), (xg, wg), grad)

    return step


def median_ms(step: Callable, device: str, repeats: int, warmup: int = 3, before: Callable | None = None) -> float:
    """Median time of ``step`` in ms after ``warmup`` runs: CUDA events on a GPU, perf_counter on a CPU.

    ``before`` runs ahead of each timed run, outside the timing (e.g. to evict the L2 cache).
    """
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            step()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def environment(device: str) -> dict:
    """Date, device name and library versions, for the results file."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device=torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
        torch=torch.__version__,
        triton=triton_version,
    )


def write_results(name: str, device: str, meta: dict, rows: list[dict], out: Path = RESULTS) -> Path:
    """Write ``{meta, rows}`` to ``out/<name>-<device>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{device}.json"
    path.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    return path


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(str(v) for v in row) + " |" for row in rows)])
