"""The self-calibration's memory-bound steps in the official code's plain PyTorch ops (Liu et al., CVPR 2020, Eq. 1-4).

These are the references of the custom ops in ``op.py``: they serve the CPU, and on CUDA every case the kernels do
not take (NCHW tensors, float64, small maps).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from ..common import accumulator_dtype, as_layout, memory_format_of

__all__ = [
    "add_upsampled",
    "calibrate_backward_reference",
    "calibrate_reference",
    "calibration_pool_backward_reference",
    "calibration_pool_reference",
    "nearest_source_index",
]


def nearest_source_index(out_size: int, in_size: int, device: torch.device | str = "cpu") -> Tensor:
    """For each of ``out_size`` output rows, the input row that PyTorch's 'nearest' up-sampling reads:
    ``min(floor(i * (in_size / out_size)), in_size - 1)`` with the scale and product in float32, as ATen does."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    src = (torch.arange(out_size, dtype=torch.float32) * scale).floor().long().clamp_(max=in_size - 1)
    return src.to(device)


@functools.lru_cache(maxsize=64)
def _cpu_source_index(out_size: int, in_size: int) -> Tensor:
    """``nearest_source_index`` on the CPU, computed once per size pair (a normal tensor even under inference mode)."""
    with torch.inference_mode(False):
        return nearest_source_index(out_size, in_size)


def _repeats(out_size: int, in_size: int) -> int:
    """How many times nearest up-sampling from ``in_size`` to ``out_size`` repeats each source pixel, where it repeats
    every one the same number of times with ATen's float32 index (one source pixel, or a power-of-two ratio: then
    ``floor(i * (in / out))`` is exactly ``i // ratio``); 0 where it does not."""
    if in_size == 1:
        return out_size
    ratio = out_size // in_size
    return ratio if out_size == ratio * in_size and ratio & (ratio - 1) == 0 else 0


def add_upsampled(x: Tensor, y: Tensor, out: Tensor) -> Tensor:
    """``x + Up(y)`` (nearest, to x's size) written into ``out`` (which may be x): where each of y's pixels covers a
    whole block of x's, y is broadcast over the blocks instead of up-sampled into a temporary map (on a CPU, over
    blocks of rows)."""
    h, w = x.shape[-2], x.shape[-1]
    hy, wy = y.shape[-2], y.shape[-1]
    rh, rw = _repeats(h, hy), _repeats(w, wy)
    if not torch.jit.is_scripting() and x.device.type == "cpu" and x.is_contiguous() and out.is_contiguous():
        # On a CPU (2 cores, SCNet-50 at batch 1) these were 2-3x faster than the broadcast below and than
        # F.interpolate, which copies its input and output there: y's rows widened once (a map 1/rh of x's size) and
        # broadcast over each block of rh rows, so that the add's inner loop runs along whole rows; where the blocks
        # are uneven, the up-sampled map gathered by ATen's source indices.
        n, c = x.shape[0], x.shape[1]
        if rh and rw:
            rows = y.unsqueeze(-1).expand(n, c, hy, wy, rw).reshape(n, c, hy, 1, w)
            torch.add(x.view(n, c, hy, rh, w), rows, out=out.view(n, c, hy, rh, w))
            return out
        up = y.index_select(3, _cpu_source_index(w, wy)).index_select(2, _cpu_source_index(h, hy))
        return torch.add(x, up, out=out)
    if rh and rw:
        blocks = [x.shape[0], x.shape[1], hy, rh, wy, rw]
        y6 = y.unsqueeze(3).unsqueeze(5)
        torch.add(x.view(blocks), y6, out=out.view(blocks))
        return out
    return torch.add(x, F.interpolate(y, size=[h, w], mode="nearest"), out=out)


def calibrate_reference(x: Tensor, k3: Tensor, y: Tensor) -> Tensor:
    """``k3 * sigmoid(x + Up(y))``: the official code's operations, in its order and precision (in k3's layout)."""
    out = k3 * torch.sigmoid(x + F.interpolate(y, size=x.shape[-2:], mode="nearest"))
    return as_layout(out, memory_format_of(k3))


def calibrate_backward_reference(grad: Tensor, x: Tensor, k3: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(grad_x, grad_k3, grad_y) of ``calibrate_reference`` for ``grad``, computed in float32 for half types."""
    acc = accumulator_dtype(x.dtype)
    g, xa, ka = grad.to(acc), x.to(acc), k3.to(acc)
    s = torch.sigmoid(xa + F.interpolate(y.to(acc), size=x.shape[-2:], mode="nearest"))
    grad_k3 = g * s
    grad_x = g * ka * s * (1 - s)
    grad_y = torch.ops.aten.upsample_nearest2d_backward(grad_x, list(x.shape[-2:]), list(y.shape), None, None)
    return (as_layout(grad_x.to(x.dtype), memory_format_of(x)), as_layout(grad_k3.to(k3.dtype), memory_format_of(k3)),
            as_layout(grad_y.to(y.dtype), memory_format_of(y)))  # fmt: skip


def calibration_pool_reference(x: Tensor, kh: int, kw: int) -> Tensor:
    """kh x kw average pooling, stride (kh, kw), floor mode: ``F.avg_pool2d`` as in the official code (in x's
    layout)."""
    return as_layout(F.avg_pool2d(x, (kh, kw), (kh, kw)), memory_format_of(x))


def calibration_pool_backward_reference(grad: Tensor, x: Tensor, kh: int, kw: int) -> Tensor:
    """Gradient of the pooling of ``x`` (only its shape and layout are read): each window's gradient over its
    kh * kw pixels, zero on the rows and columns that no window covers; PyTorch's own average-pool backward."""
    out = torch.ops.aten.avg_pool2d_backward(grad, x, [kh, kw], [kh, kw], [0, 0], False, True, None)
    return as_layout(out, memory_format_of(x))
