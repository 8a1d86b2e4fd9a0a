"""Where the time of one step goes: the device kernels of a few steps under ``torch.profiler``, grouped by kind
(:func:`kernel_profile`) or by the module that spent it (:func:`module_profile`); and the command line of the scripts
that print them (``profile_step.py``, ``profile_roles.py``).

The step is the harness's (``adaptconv.benchmark.harness.timed_step``: forward, or forward + backward + SGD
update), so the profile belongs to the same setting that ``adaptconv benchmark`` times. Kernel names are sorted into
a few categories by the words in them (:data:`CATEGORIES`); on a CPU the profiler's operator times take the
kernels' place.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from adaptconv.benchmark import LAYOUTS, Setting
from adaptconv.benchmark.harness import create, input_batches, prepare, timed_step

from . import flags, record

__all__ = ["CATEGORIES", "category", "kernel_profile", "module_profile", "parser", "settings", "synchronizing_calls",
           "write"]  # fmt: skip

#: (category, regular expression on the lower-cased kernel name), first match wins
CATEGORIES: list[tuple[str, str]] = [
    ("involution aggregation", r"involution|^(fused_)?(forward|backward)_kernel$"),
    ("convolution", r"conv|cudnn|xmma|implicit_gemm|fprop|dgrad|wgrad|winograd"),
    ("matrix product", r"gemm|cutlass|cublas|nvjet|matmul|aten::(add)?mm\b"),
    ("batch norm", r"batch_norm|batchnorm|bn_|welford"),
    ("pooling", r"pool"),
    ("reduction", r"reduce|sum|mean"),
    ("copy / concatenation", r"copy|cat|clone|contiguous"),
    ("optimizer", r"multi_tensor|foreach|sgd"),
    ("element-wise", r"elementwise|vectorized|unrolled|sigmoid|relu|mul|add|fill"),
]


def category(name: str) -> str:
    """The category of a kernel (or, on a CPU, an operator) name; ``other`` if none matches."""
    low = name.lower()
    return next((cat for cat, pattern in CATEGORIES if re.search(pattern, low)), "other")


def synchronizing_calls(step: Callable[[], object], frames: int = 4) -> list[str]:
    """Run ``step`` once under CUDA's synchronisation debug mode; one entry per call that waited for the device:
    its warning and the innermost ``frames`` Python frames outside the warnings machinery."""
    sites: list[str] = []

    def record(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        if "called a synchronizing CUDA operation" in str(message):
            stack = [f for f in traceback.extract_stack()[:-1] if "warnings" not in f.filename]
            # file names without their folders: the results carry no paths of the machine
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack[::-1][:frames])
            sites.append(f"{message} at {Path(filename).name}:{lineno}; {where}")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sites


def kernel_profile(s: Setting, device: str, steps: int = 5, warmup: int = 3) -> dict:
    """Profile ``steps`` steps of setting ``s`` after ``warmup``; per step: device time and launches of each
    kernel and of each category, sorted by time, the host's time to issue the step (milliseconds), and the calls
    in it that wait for the device (CUDA): their number and where each was made."""
    model = create(s.model, num_classes=1000).to(device, memory_format=LAYOUTS[s.layout])
    model = prepare(model, s.mode)
    step, advance = timed_step(s, model, device, input_batches(s, device, 3, 1000))
    for _ in range(warmup):
        step()
        advance()
    # Host time to issue one step (the queue empty at its start, no wait at its end): where it exceeds the kernels'
    # time, the GPU waits for Python and the step's time is the host's.
    host = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        host.append((time.perf_counter() - t) * 1e3)
        advance()
    # Calls that wait for the device inside one step (each stalls the host's queueing of kernels), with the
    # innermost Python frames that made them.
    sync_sites: list[str] = []
    if device == "cuda":
        sync_sites = synchronizing_calls(step)
        advance()
    activities = [ProfilerActivity.CUDA] if device == "cuda" else [ProfilerActivity.CPU]
    if device == "cuda":
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
            advance()
        if device == "cuda":
            torch.cuda.synchronize()
    time_ms: dict[str, float] = collections.defaultdict(float)
    calls: dict[str, int] = collections.Counter()
    for ev in prof.events():
        if device == "cuda":
            if ev.device_type != torch.autograd.DeviceType.CUDA:
                continue
            us = ev.device_time
        else:
            if ev.cpu_parent is not None:  # top-level operators only: nested ones are inside their parents' time
                continue
            us = ev.cpu_time
        time_ms[ev.name] += us / 1e3 / steps
        calls[ev.name] += 1
    kernels = sorted(
        (dict(name=k, category=category(k), ms=v, calls=calls[k] / steps) for k, v in time_ms.items()),
        key=lambda r: -r["ms"],
    )
    cats: dict[str, dict] = {}
    for k in kernels:
        c = cats.setdefault(k["category"], dict(category=k["category"], ms=0.0, calls=0.0))
        c["ms"] += k["ms"]
        c["calls"] += k["calls"]
    return dict(
        host_ms=statistics.median(host),
        synchronizations=len(sync_sites),
        synchronization_sites=sync_sites,
        total_ms=sum(k["ms"] for k in kernels),
        launches=sum(k["calls"] for k in kernels),
        categories=sorted(cats.values(), key=lambda r: -r["ms"]),
        kernels=kernels,
    )


_MODULE_TAG = "module::"
_BACKWARD_TAG = "autograd::engine::evaluate_function: "


class _ModuleRanges:
    """While active, every module call of ``model`` runs inside a profiler range named after the module's path, so
    that the operators it issues (and, through their autograd sequence numbers, their backward passes) can be traced
    back to it."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.paths = {m: name or "<model>" for name, m in model.named_modules()}
        self.stack: list = []
        self.handles: list = []

    def _enter(self, module: torch.nn.Module, args) -> None:  # noqa: ANN001
        if module in self.paths:
            rf = torch.autograd.profiler.record_function(_MODULE_TAG + self.paths[module])
            rf.__enter__()
            self.stack.append(rf)

    def _exit(self, module: torch.nn.Module, args, out) -> None:  # noqa: ANN001
        if module in self.paths:
            self.stack.pop().__exit__(None, None, None)

    def __enter__(self) -> _ModuleRanges:
        self.handles = [torch.nn.modules.module.register_module_forward_pre_hook(self._enter),
                        torch.nn.modules.module.register_module_forward_hook(self._exit)]  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()


def _owner(ev) -> tuple[str | None, str, str]:  # noqa: ANN001
    """(innermost module path or None, ``forward``/``backward``, operator or autograd node) of a profiled op."""
    op, p = ev.name, ev
    while p is not None:
        if p.name.startswith(_BACKWARD_TAG):
            return None, "backward", p.name[len(_BACKWARD_TAG) :] + f"#{p.sequence_nr}"
        if p.name.startswith(_MODULE_TAG):
            return p.name[len(_MODULE_TAG) :], "forward", op
        if p.name.startswith("Optimizer."):
            return "<optimizer>", "forward", op
        if p.name.startswith("aten::"):
            op = p.name  # the outermost operator
        p = p.cpu_parent
    return None, "forward", op


def module_profile(s: Setting, device: str, steps: int = 3, warmup: int = 3) -> dict:
    """Device time of an eager step by module: each operator's kernels (on a CPU, its own CPU time) go to the
    innermost module that called it, forward or backward (a backward node belongs to the module whose forward
    operator recorded it). Returns ``rows`` (module path, its class, pass, operator or node, ms a step, launches a
    step) and ``total_ms``. Work outside every module has path ``<optimizer>`` (the optimizer's step),
    ``<autograd>`` (work of the backward pass outside every node: the sums of gradients of tensors used more than
    once; on a GPU only, where the backward pass has its own thread) or ``None`` (the loss, anything else)."""
    if s.mode != "eager":
        raise ValueError("module_profile needs mode 'eager': compiled graphs have no module boundaries")
    model = create(s.model, num_classes=1000).to(device, memory_format=LAYOUTS[s.layout])
    classes = {name or "<model>": type(m).__name__ for name, m in model.named_modules()}
    step, advance = timed_step(s, model, device, input_batches(s, device, 3, 1000))
    for _ in range(warmup):
        step()
        advance()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    if device == "cuda":
        torch.cuda.synchronize()
    with _ModuleRanges(model), profile(activities=activities) as prof:
        for _ in range(steps):
            step()
            advance()
        if device == "cuda":
            torch.cuda.synchronize()
    events = [ev for ev in prof.events() if ev.device_type == torch.autograd.DeviceType.CPU]
    seq_module: dict[int, str] = {}
    for ev in events:  # forward operators that recorded an autograd node: the module that called them
        if ev.sequence_nr >= 0 and not ev.name.startswith((_MODULE_TAG, _BACKWARD_TAG)):
            path, direction, _ = _owner(ev)
            if direction == "forward" and path is not None:
                seq_module.setdefault(ev.sequence_nr, path)
    main_thread = next(ev.thread for ev in events if ev.name.startswith(_MODULE_TAG))
    time_ms: dict[tuple, float] = collections.defaultdict(float)
    calls: dict[tuple, int] = collections.Counter()
    for ev in events:
        if device == "cuda":
            us, n = sum(k.duration for k in ev.kernels), len(ev.kernels)
        elif ev.name.startswith("aten::"):
            us, n = ev.self_cpu_time_total, 1
        else:
            continue
        if not n:
            continue
        path, direction, op = _owner(ev)
        if direction == "backward":
            node, seq = op.rsplit("#", 1)
            path, op = seq_module.get(int(seq)), node
        elif path is None and ev.thread != main_thread:
            path = "<autograd>"
        key = (path, direction, op)
        time_ms[key] += us / 1e3 / steps
        calls[key] += n
    rows = [dict(module=k[0], cls=classes.get(k[0]), direction=k[1], op=k[2], ms=v, calls=calls[k] / steps)
            for k, v in sorted(time_ms.items(), key=lambda kv: -kv[1])]  # fmt: skip
    return dict(rows=rows, total_ms=sum(r["ms"] for r in rows))


def parser(script: str, description: str, models: list[str], steps: int, mode: bool = False) -> argparse.ArgumentParser:
    """The profilers' flags: ``--models``, ``--task``, ``--batch-size`` (default: the harness's for the device),
    ``--img-size``, ``--steps``, ``--device``, ``--output`` and ``--name``, and with ``mode`` ``--mode``."""
    extra = dict(mode="eager") if mode else {}
    ap = flags.parser(script, description, models=models, task="train", batch_size=None, img_size=224,
                      device=flags.default_device(), **extra)  # fmt: skip
    ap.add_argument("--steps", type=int, default=steps, help="profiled steps")
    return ap


def settings(args: argparse.Namespace) -> list[Setting]:
    """One ``Setting`` per model of :func:`parser`'s ``args``: the harness's step (bf16 autocast, channels_last,
    batch 128 train / 256 inference on a GPU; fp32 NCHW at batch 2 on a CPU), in ``--mode`` where the parser has
    it, else eager."""
    gpu = args.device == "cuda"
    batch = args.batch_size or ((128 if args.task == "train" else 256) if gpu else 2)
    dtype, layout = ("bf16", "channels_last") if gpu else ("fp32", "nchw")
    mode = getattr(args, "mode", "eager")
    return [Setting(m, args.task, batch, dtype, layout, mode, args.img_size) for m in args.models]


def write(args: argparse.Namespace, settings: list[Setting], rows: list[dict], parts: tuple[str, ...] = ()) -> Path:
    """The record of a profiler's run, with the batch size, dtype and layout that :func:`settings` chose."""
    s = settings[0]
    return record.write(args, args.device, rows, parts, batch=s.batch, dtype=s.dtype, layout=s.layout)
