"""The involution's CUDA implementations: the compiled kernels for the tensors they take, the references otherwise.

- dense channels_last tensors that ``nvrtc_channels_last.supports`` accepts (NVRTC present, a compiled window and
  dtype): the CUDA C++ kernels of ``aggregation_channels_last.cu``, compiled at first use; by default the forward
  only (``ADAPTCONV_NVRTC``: the gradients are faster on the Triton kernels so far);
- other channels_last tensors (channel axis of unit stride): the pixel-block kernels of ``triton_channels_last.py``;
- NCHW and every other layout: the spatial-tile kernels of ``triton_nchw.py``;
- ``adaptconv::involution_fused``'s forward, any layout: ``triton_fused.py``;
- float64, and tensors of different dtypes: the references of ``reference.py``.

``dispatch.py`` registers these functions as the ops' CUDA implementations. The launchers run on CPU tensors too
under ``TRITON_INTERPRET=1`` (set before triton is imported): that is how the tests check the kernels without a GPU.
"""

from __future__ import annotations

import torch
import triton
from torch import Tensor

from ..common import INT32_MAX, device_guard, empty_like_layout, is_channels_last, sample_extent
from . import nvrtc_channels_last, triton_channels_last, triton_fused, triton_nchw
from .reference import (
    involution_aggregate_backward_reference,
    involution_aggregate_reference,
    involution_fused_reference,
)

__all__ = [
    "SUPPORTED_DTYPES",
    "aggregate",
    "aggregate_backward",
    "aggregate_backward_triton",
    "aggregate_triton",
    "fused",
    "fused_triton",
    "needs_int64",
]

#: dtypes the kernels take (float32 accumulation); others, float64 included, go to the reference
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Channels of one group held in registers at a time; wider groups are processed in chunks of this many.
_MAX_BLOCK_C = 32
# Reduced channels of the fused kernel's generator held in registers at a time (C_r = C/4 is 8-128 in RedNet-50);
# more are streamed in chunks of this many for every tap.
_MAX_BLOCK_R = 32


def _block_channels(group_channels: int) -> int:
    return min(triton.next_power_of_2(group_channels), _MAX_BLOCK_C)


def needs_int64(tensors: tuple[Tensor, ...], reach: int) -> bool:
    """Whether an offset inside one sample (dims 1-3) could pass int32; the sample offset is always int64.

    ``reach`` bounds how many rows or columns a tap's pointer arithmetic steps outside a tensor (padding plus the
    window's span); the kernels only dereference in-range elements, but the offsets must not wrap on the way.
    """
    return any(sample_extent(t) + reach * (t.stride(2) + t.stride(3)) > INT32_MAX for t in tensors)


def _constants(group_channels: int, kernel_size: int, stride: int, padding: int, dilation: int,
               tensors: tuple[Tensor, ...], reach: int, channels_last: bool) -> dict:  # fmt: skip
    """The compile-time arguments of the kernels: the window, the channel chunk, WIDE (int64 offsets inside a
    sample, see ``needs_int64``), and for the channels_last kernels KP, the taps of a kernel row padded to a power
    of two."""
    block_c = _block_channels(group_channels)
    constants = dict(K=kernel_size, STRIDE=stride, PAD=padding, DIL=dilation, BLOCK_C=block_c,
                     EVEN_C=group_channels % block_c == 0, WIDE=needs_int64(tensors, reach))  # fmt: skip
    if channels_last:
        constants["KP"] = triton.next_power_of_2(kernel_size)
    return constants


def _tile_grid(sample_groups: int, grid_h: int, grid_w: int):
    """The launch grid of a spatial-tile kernel: one program per (sample, group) and BLOCK_H x BLOCK_W tile."""
    return lambda meta: (sample_groups * triton.cdiv(grid_h, meta["BLOCK_H"]) * triton.cdiv(grid_w, meta["BLOCK_W"]),)


def _pixel_grid(sample_groups: int, pixels: int):
    """The launch grid of a pixel-block kernel: one program per (sample, group) and BLOCK_P pixels."""
    return lambda meta: (sample_groups * triton.cdiv(pixels, meta["BLOCK_P"]),)


def _geometry(x: Tensor, weight: Tensor, kernel_size: int) -> tuple[int, int]:
    groups = weight.shape[1] // (kernel_size * kernel_size)
    return groups, x.shape[1] // groups


def aggregate_triton(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    """The aggregation y (N, C, H_out, W_out) of x (N, C, H, W) with kernels (N, G*K*K, H_out, W_out), in Triton.

    x and weight: one dtype of ``SUPPORTED_DTYPES``, any strides. The output has x's dtype and the memory format
    ``involution_aggregate`` gives (channels_last for channels_last x). No argument checks: the public
    ``involution_aggregate`` does them.
    """
    n, c, h, w = x.shape
    ho, wo = weight.shape[-2:]
    groups, group_channels = _geometry(x, weight, kernel_size)
    y = empty_like_layout((n, c, ho, wo), x, x.dtype)
    if y.numel() == 0:
        return y
    args = (x, weight, y, group_channels, groups, h, w, ho, wo)
    strides = (*x.stride(), *weight.stride(), *y.stride())
    reach = padding + (kernel_size - 1) * dilation
    channels_last = is_channels_last(x)
    constants = _constants(group_channels, kernel_size, stride, padding, dilation, (x, weight, y), reach, channels_last)
    with device_guard(x):
        if channels_last:
            triton_channels_last.forward_kernel[_pixel_grid(n * groups, ho * wo)](*args, *strides, **constants)
        else:
            triton_nchw.forward_kernel[_tile_grid(n * groups, ho, wo)](*args, ho, wo, *strides, **constants)
    return y


def aggregate_backward_triton(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    """(grad_x, grad_weight) of the aggregation for grad_out (N, C, H_out, W_out), in Triton: one kernel launch.

    Shapes, dtypes and memory formats as ``adaptconv::involution_aggregate_backward``'s reference: grad_x like x,
    grad_weight like weight. grad_out may have any strides (stride 0 for the gradient of a sum, too).
    """
    n, c, h, w = x.shape
    ho, wo = weight.shape[-2:]
    groups, group_channels = _geometry(x, weight, kernel_size)
    grad_x = empty_like_layout(tuple(x.shape), x, x.dtype)
    grad_w = empty_like_layout(tuple(weight.shape), weight, weight.dtype)
    if grad_x.numel() == 0 or grad_w.numel() == 0:
        return grad_x.zero_(), grad_w.zero_()
    reach = padding + (kernel_size - 1) * dilation + stride
    window = (group_channels, kernel_size, stride, padding, dilation)
    if is_channels_last(x):
        # The pixel-block kernel keeps the kernel gradient of a row in registers over all channel chunks.
        tensors = (grad_out, x, weight, grad_x, grad_w)
        pixels = max(ho * wo, h * w)  # a block is taken as output pixels for grad_w and as input pixels for grad_x
        with device_guard(x):
            triton_channels_last.backward_kernel[_pixel_grid(n * groups, pixels)](
                *tensors, group_channels, groups, h, w, ho, wo, *(st for t in tensors for st in t.stride()),
                **_constants(*window, tensors, reach, channels_last=True),
            )  # fmt: skip
        return grad_x, grad_w
    # A group wider than one channel chunk sums its partial kernel gradients in memory: keep those in float32.
    chunked = group_channels > _block_channels(group_channels) and weight.dtype != torch.float32
    grad_w_acc = empty_like_layout(tuple(weight.shape), weight, torch.float32) if chunked else grad_w
    tensors = (grad_out, x, weight, grad_x, grad_w_acc)
    # Every input pixel belongs to one program: the tiles cover the larger of the output grid and ceil(H/s).
    grid_h, grid_w = max(ho, triton.cdiv(h, stride)), max(wo, triton.cdiv(w, stride))
    with device_guard(x):
        triton_nchw.backward_kernel[_tile_grid(n * groups, grid_h, grid_w)](
            *tensors, group_channels, groups, h, w, ho, wo, grid_h, grid_w,
            *(st for t in tensors for st in t.stride()), **_constants(*window, tensors, reach, channels_last=False),
        )  # fmt: skip
    if chunked:
        grad_w.copy_(grad_w_acc)
    return grad_x, grad_w


def fused_triton(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
) -> Tensor:
    """``adaptconv::involution_fused`` forward in Triton: the kernels bias + span @ reduced are never stored.

    x (N, C, H, W), reduced (N, C_r, H_out, W_out), span_weight (G*K*K, C_r), span_bias (G*K*K,), one dtype.
    Output as ``aggregate_triton``.
    """
    n, c, h, w = x.shape
    ho, wo = reduced.shape[-2:]
    groups = span_weight.shape[0] // (kernel_size * kernel_size)
    group_channels = c // groups
    y = empty_like_layout((n, c, ho, wo), x, x.dtype)
    if y.numel() == 0:
        return y
    reach = padding + (kernel_size - 1) * dilation
    reduced_channels = reduced.shape[1]
    window = (group_channels, kernel_size, stride, padding, dilation)
    with device_guard(x):
        triton_fused.fused_forward_kernel[_tile_grid(n * groups, ho, wo)](
            x, reduced, span_weight, span_bias, y,
            group_channels, groups, reduced_channels, h, w, ho, wo, ho, wo,
            *x.stride(), *reduced.stride(), *span_weight.stride(), *y.stride(),
            BLOCK_R=min(triton.next_power_of_2(reduced_channels), _MAX_BLOCK_R),
            **_constants(*window, (x, reduced, y), reach, channels_last=False),
        )  # fmt: skip
    return y


def _supported(*tensors: Tensor) -> bool:
    return tensors[0].dtype in SUPPORTED_DTYPES and all(t.dtype == tensors[0].dtype for t in tensors)


def aggregate(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    """``adaptconv::involution_aggregate`` on CUDA: the kernels for supported dtypes, the reference otherwise."""
    if not _supported(x, weight):
        return involution_aggregate_reference(x, weight, kernel_size, stride, padding, dilation)
    if nvrtc_channels_last.supports(x, weight, kernel_size, stride, padding, dilation):
        return nvrtc_channels_last.aggregate(x, weight, kernel_size, stride, padding, dilation)
    return aggregate_triton(x, weight, kernel_size, stride, padding, dilation)


def aggregate_backward(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    """``adaptconv::involution_aggregate_backward`` on CUDA, chosen as in :func:`aggregate`."""
    if not _supported(grad_out, x, weight):
        return involution_aggregate_backward_reference(grad_out, x, weight, kernel_size, stride, padding, dilation)
    if nvrtc_channels_last.supports(x, weight, kernel_size, stride, padding, dilation, "backward"):
        return nvrtc_channels_last.aggregate_backward(grad_out, x, weight, kernel_size, stride, padding, dilation)
    return aggregate_backward_triton(grad_out, x, weight, kernel_size, stride, padding, dilation)


def fused(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
) -> Tensor:
    """``adaptconv::involution_fused`` on CUDA, chosen as in :func:`aggregate`."""
    args = (x, reduced, span_weight, span_bias, kernel_size, stride, padding, dilation)
    return fused_triton(*args) if _supported(*args[:4]) else involution_fused_reference(*args)
