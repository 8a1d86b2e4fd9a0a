"""Involution aggregation (Li et al., "Involution: Inverting the Inherence of Convolution", CVPR 2021, Eq. 4).

    y[n, c, h, w] = sum_{i, j} W[n, g(c), i, j, h, w] * x[n, c, h*s + i*d - p, w*s + j*d - p],   g(c) = c // (C / G)

``W`` holds one K x K kernel per output pixel and group, laid out group-major as the kernel generator
produces it: channel ``g * K*K + i * K + j`` of a (N, G*K*K, H_out, W_out) tensor. Out-of-range taps read zero.

The aggregation is one ``torch.library`` custom op, ``adaptconv::involution_aggregate``, with a fake (meta)
implementation, an autograd formula (itself the custom op ``adaptconv::involution_aggregate_backward``) and a
FLOP formula, so that ``torch.compile``/``torch.export`` trace it and faster kernels can be registered behind it
without touching any model code.

The reference implementation below loops over the K*K taps and accumulates strided views of the padded input:
it never materialises the (N, C, K*K, H_out, W_out) unfolded tensor, so its extra memory is one accumulator
the size of the output (float32 for half-precision inputs) plus one tap's temporaries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from ._checks import check_feature_map, check_kernel_size, check_positive_int, output_size
from ._tensors import accumulator_dtype, as_layout, empty_like_layout, memory_format_of

__all__ = [
    "involution_aggregate",
    "involution_aggregate_backward_reference",
    "involution_aggregate_reference",
    "involution_aggregate_unfold",
    "involution_output_size",
]


def involution_output_size(
    height: int, width: int, kernel_size: int, stride: int = 1, padding: int | None = None, dilation: int = 1
) -> tuple[int, int]:
    """(H_out, W_out) of the aggregation; ``padding=None`` means 'same' padding, ``dilation * (K - 1) // 2``."""
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    return (
        output_size(height, kernel_size, stride, padding, dilation),
        output_size(width, kernel_size, stride, padding, dilation),
    )


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
    """
    check_kernel_size(kernel_size)
    check_positive_int(stride, "stride")
    check_positive_int(dilation, "dilation")
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    check_positive_int(padding, "padding", minimum=0)
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
    ho, wo = involution_output_size(h, w, kernel_size, stride, padding, dilation)
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
    return _aggregate_op(x.to(dtype), weight.to(dtype), kernel_size, stride, padding, dilation)
