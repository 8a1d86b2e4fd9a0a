"""The self-calibration's memory-bound steps as custom ops (Liu et al., CVPR 2020, Eq. 1-4).

``adaptconv::calibrate(x, k3, y)`` is ``k3 * sigmoid(x + Up(y))`` (Eq. 3-4, ``Up`` nearest-neighbour as in the
official code); ``adaptconv::calibration_pool(x, kh, kw)`` is the kh x kw average pooling of stride (kh, kw) that
feeds K2 (Eq. 1). Each is one ``torch.library`` custom op with a fake implementation and an autograd formula (itself
a custom op), so that ``torch.compile`` and ``torch.export`` trace them and the CUDA kernels of ``calibration_triton``
serve them without any change to the models. The implementations below are the references, in the plain PyTorch ops
of the official code: they serve the CPU, and every case the kernels do not take.

Unfused, the gate takes four passes over memory forward (up-sample, add, sigmoid, multiply) and about as many
backward, plus PyTorch's slow channels_last average-pool backward (``docs/scnet_speed.md``); fused, one pass each way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._tensors import accumulator_dtype, as_layout, empty_like_layout, memory_format_of

__all__ = [
    "calibrate",
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


# --- the custom ops --------------------------------------------------------------------------------------------


@torch.library.custom_op("adaptconv::calibrate", mutates_args=())
def _calibrate_op(x: Tensor, k3: Tensor, y: Tensor) -> Tensor:
    return calibrate_reference(x, k3, y)


@_calibrate_op.register_fake
def _(x: Tensor, k3: Tensor, y: Tensor) -> Tensor:
    # the reference's type promotion: a float32 x with bfloat16 k3 and y (autocast) gives float32
    dtype = torch.promote_types(torch.promote_types(x.dtype, k3.dtype), y.dtype)
    return empty_like_layout(tuple(k3.shape), k3, dtype)


@torch.library.custom_op("adaptconv::calibrate_backward", mutates_args=())
def _calibrate_backward_op(grad: Tensor, x: Tensor, k3: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return calibrate_backward_reference(grad, x, k3, y)


@_calibrate_backward_op.register_fake
def _(grad: Tensor, x: Tensor, k3: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return tuple(empty_like_layout(tuple(t.shape), t, t.dtype) for t in (x, k3, y))


def _calibrate_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _calibrate_grad(ctx, grad: Tensor):
    return _calibrate_backward_op(grad, *ctx.saved_tensors)


_calibrate_op.register_autograd(_calibrate_grad, setup_context=_calibrate_setup)


@torch.library.custom_op("adaptconv::calibration_pool", mutates_args=())
def _pool_op(x: Tensor, kh: int, kw: int) -> Tensor:
    return calibration_pool_reference(x, kh, kw)


@_pool_op.register_fake
def _(x: Tensor, kh: int, kw: int) -> Tensor:
    n, c, h, w = x.shape
    return empty_like_layout((n, c, h // kh, w // kw), x, x.dtype)


@torch.library.custom_op("adaptconv::calibration_pool_backward", mutates_args=())
def _pool_backward_op(grad: Tensor, x: Tensor, kh: int, kw: int) -> Tensor:
    return calibration_pool_backward_reference(grad, x, kh, kw)


@_pool_backward_op.register_fake
def _(grad: Tensor, x: Tensor, kh: int, kw: int) -> Tensor:
    return empty_like_layout(tuple(x.shape), x, grad.dtype)


def _pool_setup(ctx, inputs, output) -> None:
    # x for its shape and layout: no extra memory in SCNet, where K3's conv saves the same tensor
    x, kh, kw = inputs
    ctx.save_for_backward(x)
    ctx.window = (kh, kw)


def _pool_grad(ctx, grad: Tensor):
    return _pool_backward_op(grad, *ctx.saved_tensors, *ctx.window), None, None


_pool_op.register_autograd(_pool_grad, setup_context=_pool_setup)


def calibrate(x: Tensor, k3: Tensor, y: Tensor) -> Tensor:
    """``k3 * sigmoid(x + Up(y))``, Up nearest-neighbour to x's size: the self-calibrated conv's gated features
    before K4 (CVPR 2020, Eq. 3-4), in one pass over memory where a kernel serves the case (CUDA, channels_last).

    Shapes: x, k3 (N, C, H, W) of one dtype; y (N, C, H', W'), any H', W' (K2's output at 1/r of H, W).
    """
    if x.shape != k3.shape or x.shape[:2] != y.shape[:2] or y.dim() != 4:
        raise ValueError(f"calibrate takes x and k3 of one shape (N, C, H, W) and y of shape (N, C, H', W'); got "
                         f"x {tuple(x.shape)}, k3 {tuple(k3.shape)}, y {tuple(y.shape)}")  # fmt: skip
    return torch.ops.adaptconv.calibrate(x, k3, y)
