"""The self-calibration's memory-bound steps as custom ops (Liu et al., CVPR 2020, Eq. 1-4).

``adaptconv::calibrate(x, k3, y)`` is ``k3 * sigmoid(x + Up(y))`` (Eq. 3-4, ``Up`` nearest-neighbour as in the
official code); ``adaptconv::calibration_pool(x, kh, kw)`` is the kh x kw average pooling of stride (kh, kw) that
feeds K2 (Eq. 1). Each is one ``torch.library`` custom op with a fake implementation and an autograd formula (itself
a custom op), so that ``torch.compile`` and ``torch.export`` trace them and the CUDA kernels (``dispatch.py``)
serve them without any change to the models. The implementation registered here, for every device, is the reference
of ``reference.py`` (the official code's ops); ``dispatch.py`` registers the faster CUDA one.

Unfused, the gate takes four passes over memory forward (up-sample, add, sigmoid, multiply) and about as many
backward, plus PyTorch's slow channels_last average-pool backward (``docs/scnet_speed.md``); fused, one pass each way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..common import empty_like_layout
from .reference import (
    calibrate_backward_reference,
    calibrate_reference,
    calibration_pool_backward_reference,
    calibration_pool_reference,
)

__all__ = ["calibrate", "calibration_pool"]


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
    if not torch.jit.is_scripting() and (x.shape != k3.shape or x.shape[:2] != y.shape[:2] or y.dim() != 4):
        raise ValueError(f"calibrate takes x and k3 of one shape (N, C, H, W) and y of shape (N, C, H', W'); got "
                         f"x {tuple(x.shape)}, k3 {tuple(k3.shape)}, y {tuple(y.shape)}")  # fmt: skip
    return torch.ops.adaptconv.calibrate(x, k3, y)


def calibration_pool(x: Tensor, r: int, mode: str = "avg") -> Tensor:
    """r x r pooling with stride r, the window shrunk to the whole axis on maps smaller than r: the average (the
    paper's; the custom op ``adaptconv::calibration_pool``, one Triton kernel each way on CUDA channels_last
    tensors) or, with ``mode="max"``, the maximum (an ablation; PyTorch's ``max_pool2d``)."""
    h, w = x.shape[-2], x.shape[-1]
    # Branches, not min(): under torch.export they become guards (the traced graph holds for maps of r or more
    # pixels, where the window is r), instead of a symbolic window size that ONNX's fixed-size pooling cannot take.
    kh = r if h >= r else h
    kw = r if w >= r else w
    if mode == "max":
        return F.max_pool2d(x, (kh, kw), (kh, kw))
    if not torch.jit.is_scripting():
        if not x.is_floating_point():
            raise TypeError(f"calibration_pool averages floating-point maps, got {x.dtype}; convert it with x.float()")
        if torch.compiler.is_compiling():  # inductor lowers the plain pooling itself (see SelfCalibratedConv2d.fused)
            return F.avg_pool2d(x, (kh, kw), (kh, kw))
        if not x.is_cuda and not torch.is_grad_enabled():  # what the op would run, without its dispatch (inference)
            return calibration_pool_reference(x, kh, kw)
    return torch.ops.adaptconv.calibration_pool(x, kh, kw)
