"""The CPU implementation of the involution aggregation: whole windows at once for tiny feature maps, the tap loop
otherwise.

The reference tap loop (``reference.py``) runs one in-place multiply-add per tap (K*K ops, 2*K*K backward), each
over the whole feature map: fast while a tap's work outweighs the per-op overhead. On maps smaller than the kernel
(the late stages of small images, e.g. the embedded default run's 1x1 to 4x4 maps) most taps only read padding and
the overhead dominates; there, viewing the padded input as every pixel's K x K window (a strided view, no copy)
turns the forward and the kernel gradient into one multiply and one sum each, and the input gradient into one
``fold`` (col2im), at the price of a K*K times larger product. :func:`use_windows` decides: the windows where
H_out * W_out < K * K and the product stays below :data:`WINDOW_MAX_BYTES`, the tap loop otherwise
(``benchmarks/involution_cpu.py`` measures both per model). Half precision accumulates in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..common import accumulator_dtype, empty_like_layout, memory_format_of
from .reference import involution_aggregate_backward_reference, involution_aggregate_reference

__all__ = ["WINDOW_MAX_BYTES", "aggregate", "aggregate_backward", "aggregate_windows", "aggregate_windows_backward",
           "use_windows"]  # fmt: skip

#: largest windowed product (bytes) for which the window path is taken
WINDOW_MAX_BYTES = 64 * 2**20


def use_windows(x: Tensor, weight: Tensor, kernel_size: int, max_bytes: int = WINDOW_MAX_BYTES) -> bool:
    """Whether the window path serves these tensors: an output map of fewer pixels than the kernel has taps, and a
    windowed product of at most ``max_bytes``."""
    n, c = x.shape[:2]
    pixels, taps = weight.shape[2] * weight.shape[3], kernel_size * kernel_size
    product = n * c * taps * pixels * torch.finfo(accumulator_dtype(x.dtype)).bits // 8
    return pixels < taps and product <= max_bytes


def _windows(x: Tensor, groups: int, kernel_size: int, stride: int, padding: int, dilation: int,
             out_hw: tuple[int, int]) -> Tensor:  # fmt: skip
    """Every output pixel's K x K window, (N, G, C/G, K, K, H_out, W_out): a strided view of the padded input,
    so the unfolded tensor is never copied (in the accumulation dtype)."""
    n, c = x.shape[:2]
    xp = F.pad(x.to(accumulator_dtype(x.dtype)), (padding,) * 4)
    sn, sc, sh, sw = xp.stride()
    size = (n, groups, c // groups, kernel_size, kernel_size, *out_hw)
    strides = (sn, sc * (c // groups), sc, sh * dilation, sw * dilation, sh * stride, sw * stride)
    return xp.as_strided(size, strides, xp.storage_offset())


def _weight_groups(weight: Tensor, kernel_size: int) -> Tensor:
    n, _, ho, wo = weight.shape
    return weight.to(accumulator_dtype(weight.dtype)).reshape(n, -1, 1, kernel_size, kernel_size, ho, wo)


def aggregate(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    """``adaptconv::involution_aggregate`` on a CPU: the window path where :func:`use_windows`, else the tap loop."""
    if not use_windows(x, weight, kernel_size):
        return involution_aggregate_reference(x, weight, kernel_size, stride, padding, dilation)
    return aggregate_windows(x, weight, kernel_size, stride, padding, dilation)


def aggregate_windows(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    """The forward by the window path, whatever the map size."""
    w_g = _weight_groups(weight, kernel_size)
    y = (_windows(x, w_g.shape[1], kernel_size, stride, padding, dilation, w_g.shape[-2:]) * w_g).sum((3, 4))
    y = y.flatten(1, 2)
    out = empty_like_layout(tuple(y.shape), x, x.dtype)
    return out.copy_(y)


def aggregate_backward(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    """``adaptconv::involution_aggregate_backward`` on a CPU, the paths chosen as in :func:`aggregate`."""
    if not use_windows(x, weight, kernel_size):
        return involution_aggregate_backward_reference(grad_out, x, weight, kernel_size, stride, padding, dilation)
    return aggregate_windows_backward(grad_out, x, weight, kernel_size, stride, padding, dilation)


def aggregate_windows_backward(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    """(grad_x, grad_weight) by the window path, whatever the map size."""
    n, c, h, w = x.shape
    w_g = _weight_groups(weight, kernel_size)
    groups, out_hw = w_g.shape[1], tuple(w_g.shape[-2:])
    g = grad_out.to(w_g.dtype).reshape(n, groups, c // groups, 1, 1, *out_hw)
    grad_w = (_windows(x, groups, kernel_size, stride, padding, dilation, out_hw) * g).sum(2).reshape(weight.shape)
    # grad_x scatters every window back onto the input: col2im of the per-window gradients
    grad_cols = (g * w_g).reshape(n, c * kernel_size * kernel_size, -1)
    grad_x = F.fold(grad_cols, (h, w), kernel_size, dilation=dilation, padding=padding, stride=stride)
    fmt = memory_format_of(x)
    grad_w_out = empty_like_layout(tuple(weight.shape), weight, weight.dtype).copy_(grad_w)
    return grad_x.to(x.dtype).contiguous(memory_format=fmt), grad_w_out
