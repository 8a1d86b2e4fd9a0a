"""The involution's custom ops (Li et al., CVPR 2021, Eq. 4 and 6) and the public functions that check their arguments.

- ``adaptconv::involution_aggregate(x, weight, K, stride, padding, dilation)``: aggregate each pixel's K x K
  neighbourhood with its own kernel; its gradient is the op ``adaptconv::involution_aggregate_backward``.
- ``adaptconv::involution_fused(x, reduced, span_weight, span_bias, ...)``: the same with the kernels made from the
  reduced features by the span 1x1 conv inside the op, never stored (the backward recomputes them).

Each op has a fake (meta) implementation, an autograd formula and a FLOP formula, so ``torch.compile`` and
``torch.export`` trace it and TorchScript calls it (``torch.ops.adaptconv.*``). The implementation registered here,
for every device, is the reference of ``reference.py``; ``dispatch.py`` registers the faster CPU and CUDA ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from ..common import check_feature_map, check_kernel_size, check_positive_int, empty_like_layout, output_size
from .reference import (
    involution_aggregate_backward_reference,
    involution_aggregate_reference,
    involution_fused_reference,
    span_kernels,
)

__all__ = ["involution_aggregate", "involution_fused", "involution_output_size"]


def check_window(kernel_size: int, stride: int, padding: int, dilation: int) -> None:
    """Raise a ValueError naming the argument unless the window is an odd kernel size, a stride and a dilation of at
    least 1 and a padding of at least 0."""
    check_kernel_size(kernel_size)
    check_positive_int(stride, "stride")
    check_positive_int(dilation, "dilation")
    check_positive_int(padding, "padding", minimum=0)


def involution_output_size(
    height: int, width: int, kernel_size: int, stride: int = 1, padding: int | None = None, dilation: int = 1
) -> tuple[int, int]:
    """(H_out, W_out) of the aggregation; ``padding=None`` means 'same' padding, ``dilation * (K - 1) // 2``.
    Raises a ValueError for an even or non-positive kernel size, a stride or dilation below 1, a negative padding."""
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    check_window(kernel_size, stride, padding, dilation)
    return _output_hw(height, width, kernel_size, stride, padding, dilation)


def _output_hw(height: int, width: int, kernel_size: int, stride: int, padding: int, dilation: int) -> tuple[int, int]:
    """``involution_output_size`` of a window already checked."""
    return (
        output_size(height, kernel_size, stride, padding, dilation),
        output_size(width, kernel_size, stride, padding, dilation),
    )


@torch.library.custom_op("adaptconv::involution_aggregate", mutates_args=())
def _aggregate_op(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    return involution_aggregate_reference(x, weight, kernel_size, stride, padding, dilation)


@_aggregate_op.register_fake
def _(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    n, c = x.shape[:2]
    return empty_like_layout((n, c, weight.shape[2], weight.shape[3]), x, x.dtype)


@torch.library.custom_op("adaptconv::involution_aggregate_backward", mutates_args=())
def _aggregate_backward_op(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    return involution_aggregate_backward_reference(grad_out, x, weight, kernel_size, stride, padding, dilation)


@_aggregate_backward_op.register_fake
def _(grad_out, x, weight, kernel_size, stride, padding, dilation):
    return empty_like_layout(tuple(x.shape), x, x.dtype), empty_like_layout(tuple(weight.shape), weight, weight.dtype)


def _setup_context(ctx, inputs, output) -> None:
    x, weight, kernel_size, stride, padding, dilation = inputs
    ctx.save_for_backward(x, weight)
    ctx.conf = (kernel_size, stride, padding, dilation)


def _backward(ctx, grad_out: Tensor):
    x, weight = ctx.saved_tensors
    grad_x, grad_w = _aggregate_backward_op(grad_out, x, weight, *ctx.conf)
    return grad_x, grad_w, None, None, None, None


_aggregate_op.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.adaptconv.involution_aggregate)
def _flops_forward(x_shape, w_shape, kernel_size, *args, out_shape=None, **kwargs) -> int:
    # One multiply-add per tap, channel and output pixel: K*K*C*H_out*W_out MACs (2 FLOPs each).
    n, c = x_shape[:2]
    return 2 * kernel_size * kernel_size * n * c * w_shape[2] * w_shape[3]


@register_flop_formula(torch.ops.adaptconv.involution_aggregate_backward)
def _flops_backward(grad_shape, x_shape, w_shape, kernel_size, *args, out_shape=None, **kwargs) -> int:
    # Two products per tap: one for the input gradient, one for the kernel gradient.
    return 2 * _flops_forward(x_shape, w_shape, kernel_size)


@torch.library.custom_op("adaptconv::involution_fused", mutates_args=())
def _fused_op(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
) -> Tensor:
    return involution_fused_reference(x, reduced, span_weight, span_bias, kernel_size, stride, padding, dilation)


@_fused_op.register_fake
def _(x, reduced, span_weight, span_bias, kernel_size, stride, padding, dilation):
    n, c = x.shape[:2]
    return empty_like_layout((n, c, reduced.shape[2], reduced.shape[3]), x, x.dtype)


def _fused_setup_context(ctx, inputs, output) -> None:
    x, reduced, span_weight, span_bias, *conf = inputs
    ctx.save_for_backward(x, reduced, span_weight, span_bias)
    ctx.conf = tuple(conf)


def _fused_backward(ctx, grad_out: Tensor):
    x, reduced, span_weight, span_bias = ctx.saved_tensors
    weight = span_kernels(reduced, span_weight, span_bias)  # recomputed: the forward did not keep it
    grad_x, grad_w = torch.ops.adaptconv.involution_aggregate_backward(grad_out, x, weight, *ctx.conf)
    grad_reduced = F.conv2d(grad_w, span_weight.t()[:, :, None, None])
    grad_span_weight = torch.einsum("nthw,nrhw->tr", grad_w, reduced)
    grad_span_bias = grad_w.sum((0, 2, 3))
    return grad_x, grad_reduced, grad_span_weight, grad_span_bias, None, None, None, None


_fused_op.register_autograd(_fused_backward, setup_context=_fused_setup_context)


def involution_aggregate(
    x: Tensor,
    weight: Tensor,
    kernel_size: int,
    stride: int = 1,
    padding: int | None = None,
    dilation: int = 1,
) -> Tensor:
    """Aggregate each pixel's K x K neighbourhood with its own kernel (involution, CVPR 2021, Eq. 4).

    Args:
        x: input (N, C, H, W), float16/bfloat16/float32/float64, any memory layout.
        weight: per-pixel kernels (N, G*K*K, H_out, W_out), group-major, or (N, G, K, K, H_out, W_out);
            each of the G groups is shared by C/G consecutive channels, so C must be a multiple of G.
        kernel_size: K, odd.
        stride, dilation: of the sliding window.
        padding: zero padding on every side; ``None`` gives ``dilation * (K - 1) // 2`` ('same' at stride 1).

    Returns:
        (N, C, H_out, W_out) in the promoted dtype of ``x`` and ``weight`` and in ``x``'s memory format, with
        H_out = floor((H + 2p - d(K-1) - 1) / s) + 1 (the ``nn.Conv2d`` rule).

    TorchScript calls the op directly: without the argument checks, the 6-D weight and the dtype promotion.
    """
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    if not torch.jit.is_scripting():
        x, weight = _checked_aggregation(x, weight, kernel_size, stride, padding, dilation)
    return torch.ops.adaptconv.involution_aggregate(x, weight, kernel_size, stride, padding, dilation)


def _checked_aggregation(
    x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    """``involution_aggregate``'s arguments checked (a clear error for each mistake), the weight flattened to 4-D,
    both in their promoted dtype."""
    check_window(kernel_size, stride, padding, dilation)
    check_feature_map(x, "x")
    k2 = kernel_size * kernel_size
    if isinstance(weight, Tensor) and weight.dim() == 6:
        if tuple(weight.shape[2:4]) != (kernel_size, kernel_size):
            raise ValueError(
                f"a 6-D weight must be (N, G, K, K, H_out, W_out) with K={kernel_size}, got {tuple(weight.shape)}"
            )
        weight = weight.flatten(1, 3)
    check_feature_map(weight, "weight")
    n, c, h, w = x.shape
    if weight.shape[0] != n:
        raise ValueError(f"weight has batch size {weight.shape[0]} but x has batch size {n}")
    if weight.shape[1] % k2 != 0 or weight.shape[1] == 0:
        raise ValueError(
            f"weight must have G*K*K channels with K={kernel_size} (a multiple of {k2}), got {weight.shape[1]}"
        )
    groups = weight.shape[1] // k2
    if c % groups != 0:
        raise ValueError(f"x has {c} channels, which is not a multiple of the weight's {groups} groups")
    ho, wo = _output_hw(h, w, kernel_size, stride, padding, dilation)  # the window is checked above
    if ho < 1 or wo < 1:
        raise ValueError(
            f"a {h}x{w} input is too small for kernel_size={kernel_size}, dilation={dilation}, padding={padding}"
        )
    if tuple(weight.shape[2:]) != (ho, wo):
        raise ValueError(
            f"weight has spatial size {tuple(weight.shape[2:])} but aggregating a {h}x{w} input with "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding}, dilation={dilation} gives {ho}x{wo}; "
            "generate the kernels on the output grid (e.g. average-pool x by the stride with ceil_mode=True)"
        )
    if weight.device != x.device:
        raise ValueError(f"x is on {x.device} but weight is on {weight.device}; move both to one device")
    dtype = torch.promote_types(x.dtype, weight.dtype)
    return x.to(dtype), weight.to(dtype)


def involution_fused(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int = 1,
    padding: int | None = None,
    dilation: int = 1,
) -> Tensor:
    """``involution_aggregate(x, conv1x1(reduced, span_weight, span_bias), ...)`` without storing the kernels.

    Args:
        x: input (N, C, H, W).
        reduced: the kernel generator's reduced features (N, C_r, H_out, W_out), on the output grid.
        span_weight: (G*K*K, C_r) or the conv's (G*K*K, C_r, 1, 1); span_bias: (G*K*K,). C must be a multiple of G.
        kernel_size, stride, padding, dilation: as ``involution_aggregate``.

    Returns:
        (N, C, H_out, W_out) in the promoted dtype of the inputs and in ``x``'s memory format.

    TorchScript calls the op directly, with the span weight flattened: without the argument checks and the dtype
    promotion.
    """
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    if torch.jit.is_scripting():
        span_weight = span_weight.flatten(1)
    else:
        x, reduced, span_weight, span_bias = _checked_fusion(
            x, reduced, span_weight, span_bias, kernel_size, stride, padding, dilation
        )
    return torch.ops.adaptconv.involution_fused(x, reduced, span_weight, span_bias, kernel_size, stride, padding,
                                                dilation)  # fmt: skip


def _checked_fusion(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``involution_fused``'s arguments checked, the span weight flattened to 2-D, all in the promoted dtype."""
    check_window(kernel_size, stride, padding, dilation)
    check_feature_map(x, "x")
    check_feature_map(reduced, "reduced")
    if span_weight.dim() == 4:
        span_weight = span_weight.flatten(1)
    taps = kernel_size * kernel_size
    if span_weight.dim() != 2 or span_weight.shape[1] != reduced.shape[1] or span_weight.shape[0] % taps:
        raise ValueError(
            f"span_weight must be (G*K*K, C_r) = (G*{taps}, {reduced.shape[1]}), got {tuple(span_weight.shape)}"
        )
    if tuple(span_bias.shape) != (span_weight.shape[0],):
        raise ValueError(f"span_bias must have shape ({span_weight.shape[0]},), got {tuple(span_bias.shape)}")
    groups = span_weight.shape[0] // taps
    if x.shape[1] % groups:
        raise ValueError(f"x has {x.shape[1]} channels, which is not a multiple of the {groups} kernel groups")
    out_hw = _output_hw(x.shape[2], x.shape[3], kernel_size, stride, padding, dilation)  # checked above
    if reduced.shape[0] != x.shape[0] or tuple(reduced.shape[2:]) != out_hw:
        raise ValueError(f"reduced must be (N, C_r, H_out, W_out) = ({x.shape[0]}, C_r, {out_hw[0]}, {out_hw[1]}), "
                         f"got {tuple(reduced.shape)}")  # fmt: skip
    # The kernels' dtype: that of the span conv they replace, i.e. the autocast dtype under autocast (rather than the
    # float32 of the span parameters, which would double the memory and traffic); the output's, as the unfused
    # aggregation's: promoted with x's.
    kernel_dtype = torch.promote_types(reduced.dtype, span_weight.dtype)
    if torch.is_autocast_enabled(x.device.type) and kernel_dtype.is_floating_point:
        kernel_dtype = torch.get_autocast_dtype(x.device.type)
    dtype = torch.promote_types(x.dtype, kernel_dtype)
    return x.to(dtype), reduced.to(dtype), span_weight.to(dtype), span_bias.to(dtype)
