"""CPU kernels of the involution aggregation: one unfold for small feature maps, the tap loop for large ones.

The reference tap loop (``involution_aggregate.py``) runs 2*K*K small element-wise ops per call, which on a CPU
costs more in per-op overhead than in arithmetic when the feature maps are small (the embedded default run, small
images, late stages). One ``unfold`` (im2col) followed by a multiply and a sum does the same work in three ops,
at the price of a K*K times larger temporary; it is used while that temporary stays below
:data:`UNFOLD_MAX_BYTES`, and the tap loop above. Both accumulate half precision in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .involution_aggregate import (
    _accumulator_dtype,
    _aggregate_backward_op,
    _aggregate_op,
    _empty_like_layout,
    _is_channels_last,
    involution_aggregate_backward_reference,
    involution_aggregate_reference,
)

__all__ = ["UNFOLD_MAX_BYTES"]

#: largest unfolded temporary (bytes) for which the CPU kernels use unfold rather than the tap loop
UNFOLD_MAX_BYTES = 64 * 2**20


def _use_unfold(x: Tensor, weight: Tensor, kernel_size: int) -> bool:
    n, c = x.shape[:2]
    cols = n * c * kernel_size * kernel_size * weight.shape[2] * weight.shape[3]
    return cols * torch.finfo(_accumulator_dtype(x.dtype)).bits // 8 <= UNFOLD_MAX_BYTES


def _cols(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    """The unfolded input, (N, G, C/G, K*K, H_out, W_out), in the accumulation dtype."""
    n, c = x.shape[:2]
    groups = weight.shape[1] // (kernel_size * kernel_size)
    cols = F.unfold(x.to(_accumulator_dtype(x.dtype)), kernel_size, dilation=dilation, padding=padding, stride=stride)
    return cols.view(n, groups, c // groups, kernel_size * kernel_size, *weight.shape[2:])


def _weight_groups(weight: Tensor, kernel_size: int) -> Tensor:
    n, _, ho, wo = weight.shape
    return weight.to(_accumulator_dtype(weight.dtype)).reshape(n, -1, 1, kernel_size * kernel_size, ho, wo)


@_aggregate_op.register_kernel("cpu")
def _forward_cpu(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    if not _use_unfold(x, weight, kernel_size):
        return involution_aggregate_reference(x, weight, kernel_size, stride, padding, dilation)
    cols = _cols(x, weight, kernel_size, stride, padding, dilation)
    y = (cols * _weight_groups(weight, kernel_size)).sum(3).flatten(1, 2)
    out = _empty_like_layout(tuple(y.shape), x, x.dtype)
    return out.copy_(y)


@_aggregate_backward_op.register_kernel("cpu")
def _backward_cpu(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    if not _use_unfold(x, weight, kernel_size):
        return involution_aggregate_backward_reference(grad_out, x, weight, kernel_size, stride, padding, dilation)
    n, c, h, w = x.shape
    k2 = kernel_size * kernel_size
    cols = _cols(x, weight, kernel_size, stride, padding, dilation)
    w_g = _weight_groups(weight, kernel_size)
    g = grad_out.to(cols.dtype).reshape(n, w_g.shape[1], c // w_g.shape[1], 1, *weight.shape[2:])
    grad_w = (cols * g).sum(2).reshape(weight.shape)
    grad_cols = (g * w_g).reshape(n, c * k2, -1)
    grad_x = F.fold(grad_cols, (h, w), kernel_size, dilation=dilation, padding=padding, stride=stride)
    fmt = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
    grad_w_out = _empty_like_layout(tuple(weight.shape), weight, weight.dtype).copy_(grad_w)
    return grad_x.to(x.dtype).contiguous(memory_format=fmt), grad_w_out
