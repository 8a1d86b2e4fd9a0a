"""What both operators share: argument checks (clear errors instead of failures deep inside a kernel) and what
their implementations need to know about tensors (memory layout, accumulation dtype, device, int32 reach)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Callable

import torch
from torch import Tensor

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_feature_map(x: Tensor, name: str = "x", channels: int | None = None) -> None:
    """Raise a clear error unless ``x`` is a floating-point (N, C, H, W) tensor of non-empty spatial size with
    ``channels`` channels. Nothing is checked in TorchScript (the checks' messages are Python)."""
    if not torch.jit.is_scripting():
        _check_feature_map(x, name, channels)


def _check_feature_map(x: Tensor, name: str, channels: int | None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must be a 4-D tensor (N, C, H, W), got {x.dim()}-D with shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single image"
        )
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be float16, bfloat16, float32 or float64, got {x.dtype}; convert it with x.float()"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels but this layer was built for {channels} channels")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} has an empty spatial size {tuple(x.shape[2:])}: give at least one pixel a side")


def check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_kernel_size(kernel_size: int) -> int:
    """Kernel sizes must be odd so that the kernel has a centre tap."""
    check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (3, 5, 7, ...), got {kernel_size}")
    return kernel_size


def output_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a sliding window along one axis (the same rule as ``nn.Conv2d``)."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


#: the largest offset an int32 kernel index holds
INT32_MAX = 2**31 - 1


def is_channels_last(t: Tensor) -> bool:
    """Whether ``t`` counts as channels_last: 4 dimensions, a channel axis of unit stride and more than one
    channel. New tensors made like it are channels_last, and on CUDA the channels_last kernels serve it.

    Decided from the strides alone: ``is_contiguous`` compares the strides with the sizes, which under
    torch.compile's dynamic shapes (a second input size) specialises the symbolic sizes of the backward graph's
    tensors, whose strides are concrete, and inductor then failed on the constants left behind."""
    return t.dim() == 4 and t.stride(1) == 1 and t.shape[1] > 1


def memory_format_of(t: Tensor) -> torch.memory_format:
    """``torch.channels_last`` where :func:`is_channels_last`, else ``torch.contiguous_format``."""
    return torch.channels_last if is_channels_last(t) else torch.contiguous_format


def empty_like_layout(shape: tuple[int, ...], like: Tensor, dtype: torch.dtype) -> Tensor:
    """A new (N, C, H, W) tensor in ``like``'s memory format (channels_last stays channels_last)."""
    return torch.empty(shape, dtype=dtype, device=like.device, memory_format=memory_format_of(like))


def as_layout(t: Tensor, fmt: torch.memory_format) -> Tensor:
    """``t`` with the strides a new tensor of its shape in ``fmt`` has (what fake implementations promise), copied
    only where they differ: ``contiguous(memory_format=...)`` keeps other strides on dimensions of size 1."""
    out = torch.empty_like(t, memory_format=fmt)
    return t if t.stride() == out.stride() else out.copy_(t)


def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs (their sums and transcendental functions lose too much), else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def device_guard(t: Tensor):
    """Triton launches on the current CUDA device: a context that makes it ``t``'s one (nothing on a CPU)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def sample_extent(t: Tensor) -> int:
    """The largest element offset inside one sample of ``t`` (dimensions 1 on): where it passes ``INT32_MAX``,
    int32 kernel offsets would wrap."""
    return sum((size - 1) * stride for size, stride in zip(t.shape[1:], t.stride()[1:], strict=True))


#: whether triton is installed: the operators' CUDA kernels are registered only then
TRITON_INSTALLED = importlib.util.find_spec("triton") is not None


def imported_on_first_call(module: str, name: str) -> Callable:
    """``module.name``, imported on the function's first call rather than now: the CUDA implementations import
    triton, which a CPU user (and ``import adaptconv``) need not pay for."""

    def call(*args):
        return getattr(importlib.import_module(module), name)(*args)

    call.__name__ = call.__qualname__ = name
    return call
