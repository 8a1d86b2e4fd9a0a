"""Model speed and memory against a baseline measured in the same run.

Every setting (model x batch size x dtype x memory layout x eager/compiled x inference/train step) is measured for
the model and for its baseline (timm's ResNet of the same depth) one after the other in the same process, so that
the ratio between them is what a run on that machine, with those library versions, gives.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models import create_model, fuse_for_inference
from .timing import median_ms, peak_memory_mib, reset_peak_memory

__all__ = ["DTYPES", "LAYOUTS", "MODES", "TASKS", "VARIANTS", "Setting", "baseline_for", "create", "input_batches",
           "measure", "prepare", "ratio", "run", "settings", "timed_step"]  # fmt: skip

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # None: no autocast
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
MODES = ("eager", "compile", "reduce-overhead")
TASKS = ("inference", "train")


#: model variants, named after a '+' (several may follow each other): the model family that has each, and the
#: keyword arguments it stands for. ``rednet50+fused`` is RedNet-50 with fused involution kernel generation,
#: ``rednet50+fused+recompute`` also recomputes its stem in the backward pass; ``scnet50+fused_gate`` computes the
#: calibration gates with the fused op instead of the official code's separate ops (the default, which
#: ``scnet50+unfused`` names explicitly); ``scnet50+official`` builds the official code's layers one by one instead
#: of the merged ones (``scnet50+official+unfused``: the official code's layers and ops);
#: ``scnet50+recompute_calibration`` recomputes each block's calibration in the backward pass
VARIANTS: dict[str, tuple[str, dict]] = {
    "fused": ("rednet", dict(fused_involution=True)),
    "recompute": ("rednet", dict(recompute_stem=True)),
    "unfused": ("scnet", dict(fused_calibration=False)),
    "fused_gate": ("scnet", dict(fused_calibration=True)),
    "recompute_calibration": ("scnet", dict(recompute_calibration=True)),
    "official": ("scnet", dict(official_layers=True)),
}


def prepare(model: nn.Module, mode: str) -> nn.Module:
    """The model as run in ``mode``: eager, ``torch.compile``d, or compiled with CUDA graphs (torch.compile's
    "reduce-overhead": the step's kernels replayed as one graph, without Python's launch overhead)."""
    if mode == "eager":
        return model
    return torch.compile(model, mode=None if mode == "compile" else mode)


def create(model: str, **kwargs) -> nn.Module:
    """``create_model`` for a model name with optional ``+variant`` suffixes (:data:`VARIANTS`)."""
    name, *variants = model.split("+")
    for v in variants:
        kwargs.update(VARIANTS[v][1])
    return create_model(name, **kwargs)


def _check_name(model: str) -> None:
    name, *variants = model.split("+")
    if not timm.is_model(name):
        raise ValueError(f"unknown model {name!r}; `adaptconv list` shows ours, and any timm model is allowed")
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant '+{v}' of {name}; choose from {', '.join(VARIANTS)}")
        family = VARIANTS[v][0]
        if not name.startswith(family):
            raise ValueError(f"variant '+{v}' is for the {family} models, not {name}")


@dataclass(frozen=True)
class Setting:
    """One measurement: what runs, on how many images, in which precision, layout and mode."""

    model: str
    task: str = "inference"
    batch: int = 1
    dtype: str = "fp32"
    layout: str = "nchw"
    mode: str = "eager"
    img_size: int = 224
    fold: bool = False  # batch norms folded into the convolutions (``fuse_for_inference``), model and baseline alike


def baseline_for(model: str) -> str:
    """timm's ResNet of the same depth and stem: ``rednet101`` -> ``resnet101``, ``scnet50_v1d`` -> ``resnet50d``;
    ``resnet50`` where timm has no such ResNet (RedNet-38)."""
    model = model.split("+")[0]
    depth = re.search(r"\d+", model)
    name = f"resnet{depth.group() if depth else ''}{'d' if model.endswith('_v1d') else ''}"
    return name if depth and timm.is_model(name) else "resnet50"


def settings(models: Iterable[str], tasks: Iterable[str], batches: dict[str, list[int]], dtypes: Iterable[str],
             layouts: Iterable[str], modes: Iterable[str], img_size: int,
             folds: Iterable[bool] = (False,)) -> list[Setting]:  # fmt: skip
    """The cross product of the options, checked; ``batches`` maps each task to its batch sizes; ``folds``: without
    and/or with inference folding (inference only)."""
    if any(folds) and "train" in tasks:
        raise ValueError("folding batch norms into the convolutions is for inference: use --task inference")
    for value, allowed, what in [(tasks, TASKS, "task"), (dtypes, DTYPES, "dtype"), (layouts, LAYOUTS, "layout"),
                                 (modes, MODES, "mode")]:  # fmt: skip
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValueError(f"unknown {what} {bad[0]!r}; choose from {', '.join(allowed)}")
    out = []
    for model, task, dtype, layout, mode, fold in itertools.product(models, tasks, dtypes, layouts, modes, folds):
        _check_name(model)
        out += [Setting(model, task, b, dtype, layout, mode, img_size, fold) for b in batches[task]]
    return out


def input_batches(s: Setting, device: str, count: int, num_classes: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` different random (images, labels) batches of setting ``s``, cycled: the timed runs see several
    inputs, not one cached one."""
    g = torch.Generator().manual_seed(0)
    sets = []
    for _ in range(count):
        x = torch.randn(s.batch, 3, s.img_size, s.img_size, generator=g).to(device, memory_format=LAYOUTS[s.layout])
        sets.append((x, torch.randint(num_classes, (s.batch,), generator=g).to(device)))
    return itertools.cycle(sets)


def timed_step(s: Setting, model: nn.Module, device: str, inputs: Iterator) -> tuple[Callable, Callable]:
    """The step that :func:`measure` times for setting ``s`` (forward, or forward + backward + SGD update, under
    autocast to ``s.dtype``) and the hook that moves to the next of ``inputs`` (:func:`input_batches`). Public so
    that profilers observe the very step that is timed."""
    current = [next(inputs)]
    dtype = DTYPES[s.dtype]
    amp = lambda: torch.autocast(device, dtype=dtype, enabled=dtype is not None)  # noqa: E731
    if s.task == "inference":
        model.eval()

        def step() -> None:
            with torch.inference_mode(), amp():
                model(current[0][0])

    else:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        scaler = torch.amp.GradScaler(device, enabled=dtype is torch.float16)

        def step() -> None:
            x, y = current[0]
            with amp():
                loss = F.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)

    return step, lambda: current.__setitem__(0, next(inputs))


def measure(s: Setting, device: str, repeats: int = 20, warmup: int = 5, input_sets: int = 3) -> dict:
    """Time one setting: ms per step (median), images/s and peak memory (MiB, CUDA only); ``error`` when it fails
    (e.g. out of memory), so that one failed setting does not end a long run."""
    try:
        reset_peak_memory(device)
        model = create(s.model, num_classes=1000).to(device, memory_format=LAYOUTS[s.layout])
        if s.fold:
            model = fuse_for_inference(model)
        model = prepare(model, s.mode)
        if s.mode != "eager":
            warmup = max(warmup, 3)  # the first calls compile (one graph for train, one for eval) and record graphs
        step, advance = timed_step(s, model, device, input_batches(s, device, input_sets, 1000))
        ms = median_ms(step, device, repeats, warmup, before=advance)
        result = dict(ms=ms, img_s=s.batch / ms * 1e3, peak_mib=peak_memory_mib(device), error=None)
    except torch.OutOfMemoryError:
        result = dict(ms=None, img_s=None, peak_mib=None, error="out of memory")
    except Exception as e:  # noqa: BLE001  (recorded in the results; the run goes on)
        result = dict(ms=None, img_s=None, peak_mib=None, error=f"{type(e).__name__}: {str(e).splitlines()[0]}")
    finally:
        if device == "cuda":
            torch.cuda.empty_cache()
        if s.mode != "eager":
            torch._dynamo.reset()  # the next setting compiles its own model, not a guard-checked cached one
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or ``None`` where either was not measured (a failed setting, peak memory on a CPU)."""
    return None if a is None or not b else a / b


def run(all_settings: list[Setting], device: str, baseline: str | None = None, repeats: int = 20, warmup: int = 5,
        input_sets: int = 3, progress: Callable[[str], object] = print) -> list[dict]:  # fmt: skip
    """Measure every setting and its baseline (measured once per distinct setting), and the ratios to it:
    ``speed_ratio`` (model img/s over baseline img/s; > 1 is faster) and ``memory_ratio`` (< 1 uses less)."""
    cache: dict[Setting, dict] = {}
    rows = []
    for s in all_settings:
        base = replace(s, model=baseline or baseline_for(s.model))
        if base not in cache:
            progress(f"measuring {_describe(base)}")
            cache[base] = measure(base, device, repeats, warmup, input_sets)
        progress(f"measuring {_describe(s)}")
        m, b = measure(s, device, repeats, warmup, input_sets), cache[base]
        rows.append(dict(
            **asdict(s), **m, baseline=base.model, baseline_ms=b["ms"], baseline_img_s=b["img_s"],
            baseline_peak_mib=b["peak_mib"], baseline_error=b["error"],
            speed_ratio=ratio(m["img_s"], b["img_s"]), memory_ratio=ratio(m["peak_mib"], b["peak_mib"]),
        ))  # fmt: skip
    return rows


def _describe(s: Setting) -> str:
    fold = " folded" if s.fold else ""
    return f"{s.model} {s.task} batch {s.batch} {s.dtype} {s.layout} {s.mode}{fold} {s.img_size}px"
