"""Helpers shared by the tests (importable as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from adaptconv.ops import Involution2d

#: the reference data beside the clone in CI; a user's clone has none, and tests that need it skip
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def arrange(t: torch.Tensor, layout: str) -> torch.Tensor:
    """``t`` with the same values in a memory layout: contiguous, channels_last, or strided (no unit stride)."""
    if layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    # A channel slice of a wider tensor whose H and W are swapped in memory: no dimension has unit stride.
    n, c, h, w = t.shape
    wider = torch.zeros(n, c + 3, w, h, dtype=t.dtype, device=t.device).transpose(2, 3)
    wider[:, 2 : c + 2] = t
    return wider[:, 2 : c + 2]


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref||, computed in float64."""
    out, ref = out.double(), ref.double()
    return ((out - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def randomize_norms(model: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """Make every tensor of ``model`` matter, in eval mode, on input ``x``.

    Random BN affine parameters (the zero-initialised last BN of a block included), BN running statistics of
    ``x`` itself, random conv and linear biases, random BN counters, and random involution kernel biases. The
    data-dependent part of the involution kernels is damped: an involution is quadratic in the scale of its
    input, so a random deep RedNet overflows in eval mode on statistics that are only slightly off.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.momentum = None  # cumulative average: the statistics of x alone
            elif isinstance(m, Involution2d):
                m.span.weight.mul_(0.1)
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        model.train()
        model(x.float())
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (), generator=g)))
                m.momentum = 0.1
    return model.eval()


def damp_residuals(model: nn.Module, scale: float = 0.3) -> nn.Module:
    """Scale the last BN of every residual block by ``scale``, as training leaves it: each block then adds a small
    correction to its shortcut. A random deep SCNet with full-size branches is so ill-conditioned that float32
    differs from float64 by ~1e-3; damped, by ~1e-6, so that comparisons between runtimes at 1e-4 mean something.
    """
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "bn3") and isinstance(m.bn3, nn.BatchNorm2d):
                m.bn3.weight.mul_(scale)
                m.bn3.bias.mul_(scale)
    return model


def call_patched(patches: dict[str, object], fn, *args):
    """``fn(*args)`` with attributes set for the call and restored after it: ``{"package.module.name.attr": value}``.

    For the kernel tests' interpreter worker (a spawned process: what it runs must be importable, and its patches
    must not outlive the call): e.g. one tuning configuration for an autotuned kernel, or int64 offsets forced."""
    import importlib

    saved = []
    try:
        for path, value in patches.items():
            owner_path, attr = path.rsplit(".", 1)
            parts = owner_path.split(".")
            for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
                try:
                    owner = importlib.import_module(".".join(parts[:i]))
                    break
                except ModuleNotFoundError:
                    continue
            for part in parts[i:]:
                owner = getattr(owner, part)
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, value)
        return fn(*args)
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)


def always_true(*args, **kwargs) -> bool:
    """A stand-in predicate for ``call_patched`` (a lambda cannot be sent to a worker process)."""
    return True
