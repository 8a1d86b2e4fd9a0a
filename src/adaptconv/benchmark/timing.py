"""Timing one step: warm-up, then the median of repeated runs (CUDA events on a GPU, a wall clock on a CPU)."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["device_name", "environment", "median_ms", "peak_memory_mib", "reset_peak_memory"]


def median_ms(step: Callable[[], object], device: str, repeats: int, warmup: int = 3,
              before: Callable[[], object] | None = None) -> float:  # fmt: skip
    """Median time of ``step`` in milliseconds over ``repeats`` runs after ``warmup`` untimed ones.

    On CUDA each run is bracketed by CUDA events and the runs are queued back to back, with one synchronisation
    after the last: the host keeps the GPU's queue fed, as in a training loop, so Python's launch overhead counts
    only where the host is slower than the GPU (a synchronisation after every run would add it to every run's
    time: the GPU would start each run idle). Elsewhere each run is timed with ``time.perf_counter``. ``before``
    runs ahead of each timed run, outside its events (e.g. to evict the L2 cache or to pick the next input set).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        events = []
        for _ in range(repeats):
            if before is not None:
                before()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            events.append((start, end))
        torch.cuda.synchronize()
        return statistics.median(start.elapsed_time(end) for start, end in events)
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def reset_peak_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib(device: str) -> float | None:
    """Peak memory allocated by PyTorch on ``device`` since the last reset; ``None`` on a CPU, where PyTorch keeps
    no per-device peak (the process's maximum resident size mixes every setting measured before)."""
    if device != "cuda":
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else _cpu_model()


def environment(device: str) -> dict:
    """Date, device, core count and library versions, recorded with every result."""
    versions = {}
    for module in ("triton", "timm", "torchvision"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device=device_name(device),
        cpu_cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        cuda=torch.version.cuda if device == "cuda" else None,
        python=platform.python_version(),
        **versions,
    )
