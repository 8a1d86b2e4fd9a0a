"""Involution with kernel generation fused into the aggregation (Li et al., CVPR 2021, Eqs. 4 and 6).

    W[n, t, h, w] = b[t] + sum_r S[t, r] * R[n, r, h, w]      (span: the kernel generator's last 1x1 conv)
    y = involution_aggregate(x, W)

R (N, C_r, H_out, W_out) are the reduced features, S (G*K*K, C_r) and b (G*K*K) the span conv's weight and bias.
On CUDA with triton, the forward never writes W to memory: each program of the Triton kernel computes the kernel
values of its own tile. The backward recomputes W (a 1x1 conv), takes both aggregation gradients from
``adaptconv::involution_aggregate_backward`` and maps the kernels' gradient back onto R, S and b.

The op is ``adaptconv::involution_fused``, with a fake implementation and an autograd formula, so that
``torch.compile`` traces it without a graph break. Its reference implementation (every device) is the span conv
followed by the reference aggregation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_feature_map, check_kernel_size, check_positive_int
from ._tensors import empty_like_layout
from .involution_aggregate import involution_aggregate_reference, involution_output_size

__all__ = ["involution_fused", "involution_fused_reference"]


def _span(reduced: Tensor, span_weight: Tensor, span_bias: Tensor) -> Tensor:
    return F.conv2d(reduced, span_weight[:, :, None, None], span_bias)


def involution_fused_reference(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
) -> Tensor:
    """The op's reference: the span conv, then the reference aggregation; no checks, no autograd."""
    weight = _span(reduced, span_weight, span_bias)
    return involution_aggregate_reference(x, weight, kernel_size, stride, padding, dilation)


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


def _setup_context(ctx, inputs, output) -> None:
    x, reduced, span_weight, span_bias, *conf = inputs
    ctx.save_for_backward(x, reduced, span_weight, span_bias)
    ctx.conf = tuple(conf)


def _backward(ctx, grad_out: Tensor):
    x, reduced, span_weight, span_bias = ctx.saved_tensors
    weight = _span(reduced, span_weight, span_bias)  # recomputed: the forward did not keep it
    grad_x, grad_w = torch.ops.adaptconv.involution_aggregate_backward(grad_out, x, weight, *ctx.conf)
    grad_reduced = F.conv2d(grad_w, span_weight.t()[:, :, None, None])
    grad_span_weight = torch.einsum("nthw,nrhw->tr", grad_w, reduced)
    grad_span_bias = grad_w.sum((0, 2, 3))
    return grad_x, grad_reduced, grad_span_weight, grad_span_bias, None, None, None, None


_fused_op.register_autograd(_backward, setup_context=_setup_context)


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
    """
    check_kernel_size(kernel_size)
    check_positive_int(stride, "stride")
    check_positive_int(dilation, "dilation")
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    check_positive_int(padding, "padding", minimum=0)
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
    out_hw = involution_output_size(x.shape[2], x.shape[3], kernel_size, stride, padding, dilation)
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
    x, reduced, span_weight, span_bias = (t.to(dtype) for t in (x, reduced, span_weight, span_bias))
    return _fused_op(x, reduced, span_weight, span_bias, kernel_size, stride, padding, dilation)
