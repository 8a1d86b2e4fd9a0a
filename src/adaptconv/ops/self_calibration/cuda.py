"""The self-calibration's CUDA implementations: the Triton kernels of ``triton_channels_last.py`` for the tensors they
take (channels_last, one dtype of float32/float16/bfloat16, at least :data:`MIN_ELEMENTS` elements), the references
of ``reference.py`` otherwise (NCHW, float64, small maps). ``dispatch.py`` registers them.

The launchers also run on CPU tensors under ``TRITON_INTERPRET=1`` (set before triton is imported), which is how the
tests check the kernels without a GPU.
"""

from __future__ import annotations

import functools

import torch
import triton
from torch import Tensor

from ..common import INT32_MAX, device_guard, empty_like_layout, is_channels_last, sample_extent
from . import triton_channels_last
from .reference import (
    calibrate_backward_reference,
    calibrate_reference,
    calibration_pool_backward_reference,
    calibration_pool_reference,
    nearest_source_index,
)

__all__ = ["MIN_ELEMENTS", "calibrate", "calibrate_backward", "calibrate_backward_triton", "calibrate_triton",
           "calibration_pool", "calibration_pool_backward", "calibration_pool_backward_triton",
           "calibration_pool_triton", "served"]  # fmt: skip

_SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Elements of one (columns, channels) register tile; the widest block of columns the gate kernels take.
_TILE = 512
_MAX_BLOCK_W = 256
_BLOCK_P = 32  # pixels a program of the pooling's backward kernel
#: Below this many elements of x the references serve the CUDA ops: on small maps (batch 1) the kernels' launch
#: costs more host time than the four small PyTorch launches they replace, and saves no device time worth it
#: (docs/scnet_speed.md: SCNet-50 at batch 1 was slower fused, at batch 256 much faster).
MIN_ELEMENTS = 1 << 20


@functools.lru_cache(maxsize=256)
def _widest_block(out_size: int, in_size: int) -> int:
    """The most of ``out_size`` up-sampled positions that read one of ``in_size`` source positions."""
    return int(torch.bincount(nearest_source_index(out_size, in_size), minlength=in_size).max())


@functools.lru_cache(maxsize=256)
def _scale(out_size: int, in_size: int) -> float:
    # ATen's float32 scale in_size / out_size, as a Python float that converts back to float32 exactly
    return float(torch.tensor(in_size, dtype=torch.float32) / out_size)


def _gate_launch(kernel, tensors: tuple[Tensor, ...], x: Tensor, y: Tensor) -> None:
    """Launch a gate kernel over y's pixels and x's channels; ``tensors`` its pointer and stride arguments."""
    n, c, h, w = x.shape
    hy, wy = y.shape[-2:]
    block_w = triton.next_power_of_2(_widest_block(w, wy))
    block_c = min(triton.next_power_of_2(c), max(_TILE // block_w, 16))
    grid = (n * hy * wy, triton.cdiv(c, block_c))
    pointers = [t for t in tensors if isinstance(t, Tensor)]
    strides = [s for t in tensors if isinstance(t, tuple) for s in t]
    with device_guard(x):
        kernel[grid](*pointers, c, h, w, hy, wy, _scale(h, hy), _scale(w, wy), *strides, BLOCK_W=block_w,
                     BLOCK_C=block_c, num_warps=4)  # fmt: skip


def calibrate_triton(x: Tensor, k3: Tensor, y: Tensor) -> Tensor:
    """``k3 * sigmoid(x + Up(y))`` by the Triton kernel, any strides (the launcher does no checks)."""
    out = empty_like_layout(tuple(k3.shape), k3, k3.dtype)
    if out.numel():
        _gate_launch(
            triton_channels_last.gate_forward_kernel,
            (x, k3, y, out, x.stride(), k3.stride(), y.stride(), out.stride()),
            x,
            y,
        )
    return out


def calibrate_backward_triton(grad: Tensor, x: Tensor, k3: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(grad_x, grad_k3, grad_y) by the Triton kernel, each in its input's layout."""
    gx, gk, gy = (empty_like_layout(tuple(t.shape), t, t.dtype) for t in (x, k3, y))
    if x.numel():
        args = (grad, x, k3, y, gx, gk, gy, grad.stride(), x.stride(), k3.stride(), y.stride(), gx.stride(),
                gk.stride(), gy.stride())  # fmt: skip
        _gate_launch(triton_channels_last.gate_backward_kernel, args, x, y)
    else:
        gy.zero_()
    return gx, gk, gy


def calibration_pool_triton(x: Tensor, kh: int, kw: int) -> Tensor:
    """kh x kw average pooling of stride (kh, kw) by the Triton kernel."""
    n, c, h, w = x.shape
    hs, ws = h // kh, w // kw
    out = empty_like_layout((n, c, hs, ws), x, x.dtype)
    if out.numel():
        block_w = triton.next_power_of_2(kw)
        block_c = min(triton.next_power_of_2(c), max(_TILE // block_w, 16))
        with device_guard(x):
            triton_channels_last.pool_forward_kernel[(n * hs * ws, triton.cdiv(c, block_c))](
                x, out, c, hs, ws, kh, kw, *x.stride(), *out.stride(), BLOCK_W=block_w, BLOCK_C=block_c,
                num_warps=4)  # fmt: skip
    return out


def calibration_pool_backward_triton(grad: Tensor, x: Tensor, kh: int, kw: int) -> Tensor:
    """The pooling's input gradient by the Triton kernel, in x's shape and layout (x's values are not read)."""
    n, c, hs, ws = grad.shape
    height, width = x.shape[-2:]
    out = empty_like_layout(tuple(x.shape), x, grad.dtype)
    pixels = n * height * width
    if out.numel():
        block_c = min(triton.next_power_of_2(c), 64)
        with device_guard(grad):
            triton_channels_last.pool_backward_kernel[(triton.cdiv(pixels, _BLOCK_P), triton.cdiv(c, block_c))](
                grad, out, c, height, width, hs, ws, kh, kw, pixels, *grad.stride(), *out.stride(),
                BLOCK_P=_BLOCK_P, BLOCK_C=block_c, num_warps=4)  # fmt: skip
    return out


def served(*tensors: Tensor, min_elements: int | None = None) -> bool:
    """Whether the kernels take these tensors: the first (the op's largest) channels_last, of a supported dtype and
    of ``min_elements`` (default :data:`MIN_ELEMENTS`) or more; all of its dtype; offsets inside a sample that fit
    int32 (the sample offset is int64)."""
    first = tensors[0]
    min_elements = MIN_ELEMENTS if min_elements is None else min_elements
    if first.dtype not in _SUPPORTED_DTYPES or not is_channels_last(first) or first.numel() < min_elements:
        return False
    return all(t.dtype == first.dtype and sample_extent(t) <= INT32_MAX for t in tensors)


def calibrate(x: Tensor, k3: Tensor, y: Tensor) -> Tensor:
    """``adaptconv::calibrate`` on CUDA: the kernel where :func:`served`, else the reference."""
    if not served(x, k3, y) or _widest_block(x.shape[-1], y.shape[-1]) > _MAX_BLOCK_W:
        return calibrate_reference(x, k3, y)
    return calibrate_triton(x, k3, y)


def calibrate_backward(grad: Tensor, x: Tensor, k3: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``adaptconv::calibrate_backward`` on CUDA, chosen as in :func:`calibrate`."""
    if not served(x, k3, y, grad) or _widest_block(x.shape[-1], y.shape[-1]) > _MAX_BLOCK_W:
        return calibrate_backward_reference(grad, x, k3, y)
    return calibrate_backward_triton(grad, x, k3, y)


def calibration_pool(x: Tensor, kh: int, kw: int) -> Tensor:
    """``adaptconv::calibration_pool`` on CUDA, chosen as in :func:`calibrate`."""
    if not served(x) or kw > _MAX_BLOCK_W:
        return calibration_pool_reference(x, kh, kw)
    return calibration_pool_triton(x, kh, kw)


def calibration_pool_backward(grad: Tensor, x: Tensor, kh: int, kw: int) -> Tensor:
    """``adaptconv::calibration_pool_backward`` on CUDA, chosen as in :func:`calibrate`."""
    if not served(x, grad):
        return calibration_pool_backward_reference(grad, x, kh, kw)
    return calibration_pool_backward_triton(grad, x, kh, kw)
