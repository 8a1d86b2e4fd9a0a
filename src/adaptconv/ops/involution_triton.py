"""Triton implementation of the involution aggregation (Li et al., CVPR 2021, Eq. 4), forward and backward.

Importing this module registers the kernels as the CUDA implementations of the custom ops
``adaptconv::involution_aggregate``, ``adaptconv::involution_aggregate_backward`` and (forward with the kernel
generation fused in) ``adaptconv::involution_fused``, so models and ``torch.compile`` use them with no other
change; the CPU implementation stays the reference, and so do float64 and mixed dtypes on CUDA. Where triton is
not installed nothing is registered and the reference serves every device.

The launchers below also run on CPU tensors under ``TRITON_INTERPRET=1`` (set before triton is imported): that is
how the tests check the kernels without a GPU. The kernels themselves are in ``_involution_kernels`` (spatial
tiles: NCHW and other layouts), ``_involution_kernels_nhwc`` (pixel blocks: channels_last) and
``_involution_kernels_band`` (tensor cores, half precision, on request).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._tensors import INT32_MAX, device_guard, empty_like_layout, is_channels_last, sample_extent
from .involution_aggregate import (
    involution_aggregate_backward_reference,
    involution_aggregate_reference,
)
from .involution_fused import involution_fused_reference

try:
    import triton

    from . import _involution_kernels as _kernels
    from . import _involution_kernels_band as _kernels_band
    from . import _involution_kernels_nhwc as _kernels_nhwc
except ModuleNotFoundError as error:  # only a missing triton means "no kernels"; other errors are bugs
    if (error.name or "").split(".")[0] != "triton":
        raise
    _kernels = None

__all__ = [
    "AVAILABLE",
    "SUPPORTED_DTYPES",
    "involution_aggregate_backward_triton",
    "involution_aggregate_triton",
    "involution_fused_triton",
]

#: whether triton is importable, i.e. whether the CUDA kernels are registered
AVAILABLE = _kernels is not None

#: dtypes the kernels take (float32 accumulation); others, float64 included, go to the reference
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Channels of one group held in registers at a time; wider groups are processed in chunks of this many.
_MAX_BLOCK_C = 32
# Reduced channels of the fused kernel's generator held in registers at a time (C_r = C/4 is 8-128 in RedNet-50);
# more are streamed in chunks of this many for every tap.
_MAX_BLOCK_R = 32


def _block_channels(group_channels: int) -> int:
    return min(triton.next_power_of_2(group_channels), _MAX_BLOCK_C)


def _needs_int64(tensors: tuple[Tensor, ...], reach: int) -> bool:
    """Whether an offset inside one sample (dims 1-3) could pass int32; the sample offset is always int64.

    ``reach`` bounds how many rows or columns a tap's pointer arithmetic steps outside a tensor (padding plus the
    window's span); the kernels only dereference in-range elements, but the offsets must not wrap on the way.
    """
    return any(sample_extent(t) + reach * (t.stride(2) + t.stride(3)) > INT32_MAX for t in tensors)


#: the kernel families, see ``_family``
FAMILIES = ("band", "pixel", "tile")


def kernel_module(family: str):
    """The module that holds a kernel family's kernels and its ``GPU_CONFIGS`` (benchmarks read them)."""
    return {"band": _kernels_band, "pixel": _kernels_nhwc, "tile": _kernels}[family]


def _family(x: Tensor, weight: Tensor, kernel_size: int, stride: int, dilation: int, config, family: str | None) -> str:
    """Which kernels serve these tensors: 'pixel' where x's channel axis has unit stride (channels_last), else
    'tile'. A ``config`` given by a caller names its family by its keys; ``family`` forces one. The 'band' family
    (tensor cores, float16/bfloat16 only) is never the default: on an H100 it was slower than the pixel-block
    kernels at most of RedNet-50's layers (docs/involution_kernel.md); benchmarks and tests ask for it by name."""
    if config is not None and family is None:
        keys = config.kwargs
        family = "band" if "BLOCK_M" in keys else "pixel" if "BLOCK_P" in keys else "tile"
    if family is None:
        return "pixel" if is_channels_last(x) else "tile"
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if family == "band":
        if x.dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"the band kernels take float16 or bfloat16 tensors, got {x.dtype}; use family='pixel'")
        candidates = [config] if config is not None else _kernels_band.CONFIGS
        if not any(_kernels_band.usable(c, kernel_size, stride, dilation) for c in candidates):
            raise ValueError(f"a window of {kernel_size} taps with dilation {dilation} and stride {stride} is wider "
                             "than the band kernels' tiles; use family='pixel'")  # fmt: skip
    return family


def _band_grid(sample_groups: int, rows: int, cols: int, step: str):
    return lambda meta: (sample_groups * rows * triton.cdiv(cols, meta[step]),)


def _launch(kernel, grid, config: triton.Config | None, *args, **kwargs) -> None:
    """``kernel[grid](*args, **kwargs)``: tuned by its autotuner, or with the given ``config`` (tests and
    benchmarks of one tile shape)."""
    if config is None:
        kernel[grid](*args, **kwargs)
    else:
        kernel.fn[grid](*args, **kwargs, **config.kwargs, num_warps=config.num_warps)


def _constants(group_channels: int, kernel_size: int, stride: int, padding: int, dilation: int,
               tensors: tuple[Tensor, ...], reach: int, wide: bool | None, family: str = "tile") -> dict:  # fmt: skip
    """The compile-time arguments the kernels of ``family`` take: the window, the channel chunk, WIDE (int64 offsets
    inside a sample: decided from ``tensors`` and ``reach`` as in ``_needs_int64``, unless ``wide`` says), and for
    the pixel-block and band kernels KP, the taps of a kernel row padded to a power of two."""
    block_c = _block_channels(group_channels)
    if family == "band":  # tl.dot needs at least 16 along each axis: narrower groups are padded (masked) to 16
        block_c = max(block_c, 16)
    wide = _needs_int64(tensors, reach) if wide is None else wide
    constants = dict(K=kernel_size, STRIDE=stride, PAD=padding, DIL=dilation, BLOCK_C=block_c,
                     EVEN_C=group_channels % block_c == 0, WIDE=wide)  # fmt: skip
    if family != "tile":
        constants["KP"] = triton.next_power_of_2(kernel_size)
    return constants


def _tile_grid(sample_groups: int, grid_h: int, grid_w: int):
    """The launch grid of a spatial-tile kernel: one program per (sample, group) and BLOCK_H x BLOCK_W tile."""
    return lambda meta: (sample_groups * triton.cdiv(grid_h, meta["BLOCK_H"]) * triton.cdiv(grid_w, meta["BLOCK_W"]),)


def _geometry(x: Tensor, weight: Tensor, kernel_size: int) -> tuple[int, int]:
    groups = weight.shape[1] // (kernel_size * kernel_size)
    return groups, x.shape[1] // groups


def involution_aggregate_triton(
    x: Tensor,
    weight: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
    wide: bool | None = None,
    config: triton.Config | None = None,
    family: str | None = None,
) -> Tensor:
    """The aggregation y (N, C, H_out, W_out) of x (N, C, H, W) with kernels (N, G*K*K, H_out, W_out), in Triton.

    x and weight: one dtype of ``SUPPORTED_DTYPES``, any strides. The output has x's dtype and the memory format
    ``involution_aggregate`` gives (channels_last for channels_last x). No argument checks: the public
    ``involution_aggregate`` does them. ``wide``: int64 offsets inside a sample; None decides from the sizes
    (True lets tests check that path on small tensors). ``config``: one of the kernel family's ``GPU_CONFIGS``
    instead of the tuned choice. ``family``: 'band', 'pixel' or 'tile' instead of the default for the layout
    (``_family``).
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
    family = _family(x, weight, kernel_size, stride, dilation, config, family)
    constants = _constants(group_channels, kernel_size, stride, padding, dilation, (x, weight, y), reach, wide, family)
    with device_guard(x):
        if family == "band":
            _launch(_kernels_band.forward_kernel, _band_grid(n * groups, ho, wo, "M_STEP"), config, *args, *strides,
                    **constants)  # fmt: skip
        elif family == "pixel":
            grid = lambda meta: (n * groups * triton.cdiv(ho * wo, meta["BLOCK_P"]),)  # noqa: E731
            _launch(_kernels_nhwc.forward_kernel, grid, config, *args, *strides, **constants)
        else:
            _launch(
                _kernels.forward_kernel, _tile_grid(n * groups, ho, wo), config, *args, ho, wo, *strides, **constants
            )
    return y


def involution_aggregate_backward_triton(
    grad_out: Tensor,
    x: Tensor,
    weight: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
    wide: bool | None = None,
    config: triton.Config | None = None,
    family: str | None = None,
) -> tuple[Tensor, Tensor]:
    """(grad_x, grad_weight) of the aggregation for grad_out (N, C, H_out, W_out), in Triton: one kernel launch (two
    for the band family).

    Shapes, dtypes and memory formats as ``adaptconv::involution_aggregate_backward``'s reference: grad_x like x,
    grad_weight like weight. grad_out may have any strides (stride 0 for the gradient of a sum, too).
    ``wide``, ``config`` and ``family`` as in ``involution_aggregate_triton``.
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
    family = _family(x, weight, kernel_size, stride, dilation, config, family)
    if family == "band":
        # Two launches: the kernel gradient per output row, the input gradient per input row.
        constants = _constants(*window, (grad_out, x, weight, grad_x, grad_w), reach, wide, family)
        sizes = (group_channels, groups, h, w, ho, wo)
        with device_guard(x):
            _launch(_kernels_band.weight_grad_kernel, _band_grid(n * groups, ho, wo, "M_STEP"), config,
                    grad_out, x, grad_w, *sizes, *grad_out.stride(), *x.stride(), *grad_w.stride(),
                    **constants)  # fmt: skip
            _launch(_kernels_band.input_grad_kernel, _band_grid(n * groups, h, w, "Q_STEP"), config,
                    grad_out, weight, grad_x, *sizes, *grad_out.stride(), *weight.stride(), *grad_x.stride(),
                    **constants)  # fmt: skip
        return grad_x, grad_w
    if family == "pixel":
        # The pixel-block kernel keeps the kernel gradient of a row in registers over all channel chunks.
        tensors = (grad_out, x, weight, grad_x, grad_w)
        pixels = max(ho * wo, h * w)  # a block is taken as output pixels for grad_w and as input pixels for grad_x
        grid = lambda meta: (n * groups * triton.cdiv(pixels, meta["BLOCK_P"]),)  # noqa: E731
        with device_guard(x):
            _launch(
                _kernels_nhwc.backward_kernel, grid, config,
                *tensors, group_channels, groups, h, w, ho, wo, *(st for t in tensors for st in t.stride()),
                **_constants(*window, tensors, reach, wide, family),
            )  # fmt: skip
        return grad_x, grad_w
    # A group wider than one channel chunk sums its partial kernel gradients in memory: keep those in float32.
    chunked = group_channels > _block_channels(group_channels) and weight.dtype != torch.float32
    grad_w_acc = empty_like_layout(tuple(weight.shape), weight, torch.float32) if chunked else grad_w
    tensors = (grad_out, x, weight, grad_x, grad_w_acc)
    # Every input pixel belongs to one program: the tiles cover the larger of the output grid and ceil(H/s).
    grid_h, grid_w = max(ho, triton.cdiv(h, stride)), max(wo, triton.cdiv(w, stride))
    with device_guard(x):
        _launch(
            _kernels.backward_kernel, _tile_grid(n * groups, grid_h, grid_w), config,
            *tensors, group_channels, groups, h, w, ho, wo, grid_h, grid_w,
            *(st for t in tensors for st in t.stride()), **_constants(*window, tensors, reach, wide),
        )  # fmt: skip
    if chunked:
        grad_w.copy_(grad_w_acc)
    return grad_x, grad_w


def involution_fused_triton(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
    wide: bool | None = None,
) -> Tensor:
    """``adaptconv::involution_fused`` forward in Triton: the kernels bias + span @ reduced are never stored.

    x (N, C, H, W), reduced (N, C_r, H_out, W_out), span_weight (G*K*K, C_r), span_bias (G*K*K,), one dtype.
    Output as ``involution_aggregate_triton``; ``wide`` likewise.
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
    with device_guard(x):
        _kernels.fused_forward_kernel[_tile_grid(n * groups, ho, wo)](
            x, reduced, span_weight, span_bias, y,
            group_channels, groups, reduced_channels, h, w, ho, wo, ho, wo,
            *x.stride(), *reduced.stride(), *span_weight.stride(), *y.stride(),
            BLOCK_R=min(triton.next_power_of_2(reduced_channels), _MAX_BLOCK_R),
            **_constants(group_channels, kernel_size, stride, padding, dilation, (x, reduced, y), reach, wide),
        )  # fmt: skip
    return y


def _supported(*tensors: Tensor) -> bool:
    return tensors[0].dtype in SUPPORTED_DTYPES and all(t.dtype == tensors[0].dtype for t in tensors)


def _forward_cuda(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    if not _supported(x, weight):
        return involution_aggregate_reference(x, weight, kernel_size, stride, padding, dilation)
    return involution_aggregate_triton(x, weight, kernel_size, stride, padding, dilation)


def _backward_cuda(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    if not _supported(grad_out, x, weight):
        return involution_aggregate_backward_reference(grad_out, x, weight, kernel_size, stride, padding, dilation)
    return involution_aggregate_backward_triton(grad_out, x, weight, kernel_size, stride, padding, dilation)


def _fused_cuda(
    x: Tensor,
    reduced: Tensor,
    span_weight: Tensor,
    span_bias: Tensor,
    kernel_size: int,
    stride: int,
    padding: int,
    dilation: int,
) -> Tensor:
    args = (x, reduced, span_weight, span_bias, kernel_size, stride, padding, dilation)
    return involution_fused_triton(*args) if _supported(*args[:4]) else involution_fused_reference(*args)


if AVAILABLE:
    torch.library.register_kernel("adaptconv::involution_fused", "cuda", _fused_cuda)
    torch.library.register_kernel("adaptconv::involution_aggregate", "cuda", _forward_cuda)
    torch.library.register_kernel("adaptconv::involution_aggregate_backward", "cuda", _backward_cuda)
