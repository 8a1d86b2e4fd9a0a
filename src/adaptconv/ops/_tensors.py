"""What the operators' implementations share about tensors: memory layout, accumulation dtype, device, int32 reach."""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

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
