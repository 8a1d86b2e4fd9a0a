"""The involution in plain PyTorch ops (Li et al., "Involution: Inverting the Inherence of Convolution", CVPR 2021).

    y[n, c, h, w] = sum_{i, j} W[n, g(c), i, j, h, w] * x[n, c, h*s + i*d - p, w*s + j*d - p],   g(c) = c // (C / G)

(Eq. 4), with ``W`` the per-pixel kernels, laid out group-major as the kernel generator produces them: channel
``g * K*K + i * K + j`` of a (N, G*K*K, H_out, W_out) tensor. Out-of-range taps read zero.

These are the references of the custom ops in ``op.py``: on a CUDA tensor they serve every case the kernels do not
take (float64, mixed dtypes), and the CPU implementation (``cpu.py``) falls back to them on all but tiny maps. The
tap loop never materialises the (N, C, K*K, H_out, W_out) unfolded tensor: its extra memory is one accumulator the
size of the output (float32 for half-precision inputs) plus one tap's temporaries. ``involution_aggregate_unfold``
is the paper's plain formulation through ``unfold``, kept as the independent check of the others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..common import accumulator_dtype, as_layout, empty_like_layout, memory_format_of

__all__ = [
    "involution_aggregate_backward_reference",
    "involution_aggregate_reference",
    "involution_aggregate_unfold",
    "involution_fused_reference",
    "span_kernels",
]


def _tap(t: Tensor, i: int, j: int, stride: int, dilation: int, out_hw: tuple[int, int]) -> Tensor:
    """The strided view of padded ``t`` that tap (i, j) reads for every output pixel."""
    ho, wo = out_hw
    return t[..., i * dilation : i * dilation + stride * (ho - 1) + 1 : stride,
             j * dilation : j * dilation + stride * (wo - 1) + 1 : stride]  # fmt: skip


def involution_aggregate_reference(
    x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> Tensor:
    """The op's reference forward (a loop over the taps), on any device; no checks, no autograd."""
    n, c, _, _ = x.shape
    ho, wo = weight.shape[-2:]
    k2 = kernel_size * kernel_size
    groups = weight.shape[1] // k2
    acc = accumulator_dtype(x.dtype)
    out = empty_like_layout((n, c, ho, wo), x, acc).zero_()
    out_g = out.unflatten(1, (groups, -1))
    x_g = F.pad(x, (padding,) * 4).unflatten(1, (groups, -1))
    w_g = weight.unflatten(1, (groups, k2))
    for i in range(kernel_size):
        for j in range(kernel_size):
            patch = _tap(x_g, i, j, stride, dilation, (ho, wo)).to(acc)
            out_g.addcmul_(patch, w_g[:, :, i * kernel_size + j].unsqueeze(2).to(acc))
    return out.to(x.dtype)


def involution_aggregate_backward_reference(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    """The op's reference backward, (grad_x, grad_weight) for grad_out, on any device; no checks."""
    n, c, h, w = x.shape
    ho, wo = weight.shape[-2:]
    k2 = kernel_size * kernel_size
    groups = weight.shape[1] // k2
    acc = accumulator_dtype(x.dtype)
    grad_out_g = grad_out.reshape(n, groups, c // groups, ho, wo).to(acc)
    x_g = F.pad(x, (padding,) * 4).unflatten(1, (groups, -1))
    w_g = weight.unflatten(1, (groups, k2))
    grad_xp = torch.zeros((n, groups, c // groups, h + 2 * padding, w + 2 * padding), dtype=acc, device=x.device)
    grad_w = empty_like_layout(tuple(weight.shape), weight, acc)
    grad_w_g = grad_w.unflatten(1, (groups, k2))
    for i in range(kernel_size):
        for j in range(kernel_size):
            t = i * kernel_size + j
            _tap(grad_xp, i, j, stride, dilation, (ho, wo)).addcmul_(grad_out_g, w_g[:, :, t].unsqueeze(2).to(acc))
            patch = _tap(x_g, i, j, stride, dilation, (ho, wo)).to(acc)
            grad_w_g[:, :, t] = (grad_out_g * patch).sum(2)
    grad_x = grad_xp[..., padding : padding + h, padding : padding + w].reshape(n, c, h, w)
    # A real copy in x's layout: the padded buffer's view has other strides than the fake implementation says.
    return as_layout(grad_x.to(x.dtype), memory_format_of(x)), grad_w.to(weight.dtype)


def involution_aggregate_unfold(
    x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int = 1
) -> Tensor:
    """Eq. 4 through ``nn.functional.unfold``: the paper's plain formulation, in ordinary differentiable ops.

    It materialises the (N, C*K*K, H_out*W_out) unfolded input, so it needs K*K times the input's memory; it is
    kept as the independent formulation that tests and benchmarks compare ``involution_aggregate`` with.
    Arguments as ``involution_aggregate`` (weight (N, G*K*K, H_out, W_out)), without its checks.
    """
    n, c = x.shape[:2]
    ho, wo = weight.shape[-2:]
    k2 = kernel_size * kernel_size
    groups = weight.shape[1] // k2
    cols = F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    cols = cols.view(n, groups, c // groups, k2, ho, wo)
    return (cols * weight.reshape(n, groups, 1, k2, ho, wo)).sum(3).reshape(n, c, ho, wo)


def span_kernels(reduced: Tensor, span_weight: Tensor, span_bias: Tensor) -> Tensor:
    """The kernel generator's last 1x1 conv: the kernels (N, G*K*K, H_out, W_out) from the reduced features."""
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
    weight = span_kernels(reduced, span_weight, span_bias)
    return involution_aggregate_reference(x, weight, kernel_size, stride, padding, dilation)
