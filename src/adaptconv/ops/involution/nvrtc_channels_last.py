"""Launchers of the CUDA C++ kernels of ``aggregation_channels_last.cu`` (the aggregation and both gradients for
dense channels_last tensors), compiled at first use by NVRTC (``ops/nvrtc.py``).

Each kernel is specialised at compile time on a :class:`Specialisation`, (dtype, K, stride, dilation); the set the
launchers may ask for is :func:`specialisations`, finite, so the tests compile every one of them on a CPU. The rest
of the geometry (sizes, padding, groups, the block's tile) is a run-time argument, chosen by :func:`plan` from the
layer's shape alone: there is no tuning, so no first-call cost beyond compiling (cached on disk) and no dependence
of the work on the batch beyond the number of blocks.

:func:`supports` says which calls these kernels take; ``cuda.py`` sends the others to the Triton kernels.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import nvrtc
from ..common import as_layout, device_guard, memory_format_of

__all__ = [
    "KERNEL_SIZES",
    "Geometry",
    "Specialisation",
    "aggregate",
    "aggregate_backward",
    "launch_plan",
    "plan",
    "specialisation",
    "specialisations",
    "supports",
]

SOURCE = ("adaptconv.ops.involution", "aggregation_channels_last.cu")
HEADERS = (("adaptconv.ops", "vector_io.cuh"),)
#: output pixels a thread owns along a row (RedNet's maps are 7 * 2^k wide)
PIXELS = 7
#: the most threads of a block (the kernels' __launch_bounds__)
MAX_THREADS = 256
#: threads a block aims at (more channels per block on narrow maps)
TARGET_THREADS = 128
#: shared memory a block aims to stay under, so that two blocks share a multiprocessor (H100/H200: 227 KiB each)
SMEM_TARGET = 110 * 1024
#: the windows the kernels are compiled for; others go to Triton
KERNEL_SIZES = (1, 3, 5, 7)
STRIDES = (1, 2)
DILATIONS = (1, 2)
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
#: set to 1 to send the calls these kernels take to them. Off by default: on an H200 they are slower than the Triton
#: kernels at every shape measured so far (docs/involution_kernel.md, "CUDA C++ kernels compiled by NVRTC").
ENV_SWITCH = "ADAPTCONV_NVRTC"


@dataclass(frozen=True)
class Specialisation:
    """The compile-time constants of one compiled module: the element type and the window."""

    dtype: torch.dtype
    kernel_size: int
    stride: int
    dilation: int

    def defines(self) -> dict[str, int]:
        return dict(DTYPE=DTYPE_CODES[self.dtype], K=self.kernel_size, S=self.stride, D=self.dilation, P=PIXELS,
                    MAX_THREADS=MAX_THREADS)  # fmt: skip

    @property
    def vector(self) -> int:
        """Elements of one 16-byte vector."""
        return 16 // torch.empty((), dtype=self.dtype).element_size()


def specialisations() -> list[Specialisation]:
    """Every specialisation the launchers can ask for."""
    return [Specialisation(dt, k, s, d) for dt in DTYPE_CODES for k in KERNEL_SIZES for s in STRIDES for d in DILATIONS]


def specialisation(dtype: torch.dtype, kernel_size: int, stride: int, dilation: int) -> Specialisation | None:
    """The specialisation for these arguments, or None where none is compiled."""
    if dtype in DTYPE_CODES and kernel_size in KERNEL_SIZES and stride in STRIDES and dilation in DILATIONS:
        return Specialisation(dtype, kernel_size, stride, dilation)
    return None


@functools.cache
def source() -> nvrtc.Source:
    """The kernels' source with its header (read once)."""
    return nvrtc.package_source(*SOURCE, headers=HEADERS)


class Geometry(ctypes.Structure):
    """The kernels' ``struct Geometry``, field for field."""

    _fields_ = [(name, ctypes.c_int) for name in
                ("N", "C", "H", "W", "Ho", "Wo", "G", "GC", "pad", "CB", "PXT", "RB", "col_tiles", "slices", "wstride",
                 "TWO")]  # fmt: skip


@dataclass(frozen=True)
class Launch:
    """One kernel launch: its geometry, grid, block and dynamic shared memory in bytes."""

    geometry: Geometry
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    smem: int


def _smem(kernel: str, spec: Specialisation, cb: int, group_channels: int, pxt: int) -> tuple[int, int, int]:
    """(bytes of shared memory, wstride, TWO) of a block of ``cb`` channels and ``pxt`` column threads; the same
    carve-up as the kernels'."""
    k, s, d, vw = spec.kernel_size, spec.stride, spec.dilation, spec.vector
    esize = 16 // vw
    span = (k - 1) * d + 1
    groups = cb // group_channels
    if kernel == "backward_input":
        two = pxt * PIXELS + ((k - 1) * d + s - 1) // s + 2
        out_ring = (k - 1) * d // s + 2
        return (out_ring * two * cb + 2 * k * two * groups * k) * esize, 0, two
    tw = pxt * PIXELS
    ring_bytes = (span + s) * ((tw - 1) * s + span) * cb * esize
    if kernel == "forward":
        wstride = math.ceil((vw - 1 + groups * k * k) / vw) * vw
        return ring_bytes + 2 * tw * wstride * esize, wstride, 0
    return ring_bytes + 2 * tw * cb * esize, 0, 0


def plan(kernel: str, spec: Specialisation, n: int, c: int, groups: int, rows: int, cols: int, out_hw: tuple[int, int],
         in_hw: tuple[int, int], padding: int, max_smem: int, sm_count: int) -> Launch | None:  # fmt: skip
    """The launch of ``kernel`` ('forward', 'backward_weight', 'backward_input') over ``rows`` x ``cols`` (the
    output map, or the input map for 'backward_input'), or None where no block fits in ``max_smem``."""
    group_channels = c // groups
    lanes = group_channels // spec.vector
    step = PIXELS * (spec.stride if kernel == "backward_input" else 1)  # columns a column thread covers
    pxt = max(1, min(math.ceil(cols / step), MAX_THREADS // lanes))

    def groups_per_block(pxt: int) -> int:
        limit = max(lanes, min(TARGET_THREADS // pxt, MAX_THREADS // pxt))
        return max(d for d in range(1, groups + 1) if groups % d == 0 and (d * lanes <= limit or d == 1))

    gpb = groups_per_block(pxt)
    while _smem(kernel, spec, gpb * group_channels, group_channels, pxt)[0] > SMEM_TARGET and pxt > 1:
        pxt = (pxt + 1) // 2
        gpb = groups_per_block(pxt)
    while _smem(kernel, spec, gpb * group_channels, group_channels, pxt)[0] > max_smem and gpb > 1:
        gpb = max(d for d in range(1, gpb) if groups % d == 0)
    smem, wstride, two = _smem(kernel, spec, gpb * group_channels, group_channels, pxt)
    if smem > max_smem:
        return None
    col_tiles, slices = math.ceil(cols / (pxt * step)), groups // gpb
    per_row = n * col_tiles * slices
    strips = min(rows, math.ceil(4 * sm_count / per_row))  # about four blocks a multiprocessor
    rb = math.ceil(rows / strips)
    strips = math.ceil(rows / rb)
    ho, wo = out_hw
    h, w = in_hw
    geometry = Geometry(n, c, h, w, ho, wo, groups, group_channels, padding, gpb * group_channels, pxt, rb, col_tiles,
                        slices, wstride, two)  # fmt: skip
    threads = gpb * lanes * pxt
    return Launch(geometry, (col_tiles * slices * strips, n, 1), (threads, 1, 1), smem)


def _enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "0") == "1"


def _aligned(*tensors: Tensor) -> bool:
    return all(t.data_ptr() % 16 == 0 for t in tensors)


def supports(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> bool:
    """Whether these kernels take the aggregation of x by weight: switched on (``ADAPTCONV_NVRTC=1``), a CUDA
    device of compute capability 8.0 or newer with NVRTC, x dense channels_last and 16-byte aligned, a compiled
    window and dtype, whole 16-byte vectors of channels in a group, and at most 32 of them a group."""
    spec = specialisation(x.dtype, kernel_size, stride, dilation)
    if spec is None or not _enabled() or not x.is_cuda or weight.dtype != x.dtype:
        return False
    if not x.is_contiguous(memory_format=torch.channels_last) or not _aligned(x):
        return False
    n, c = x.shape[:2]
    groups = weight.shape[1] // (kernel_size * kernel_size)
    lanes, rest = divmod(c // groups, spec.vector)
    if rest or lanes > 32 or lanes & (lanes - 1) or n > 65535 or x.numel() == 0 or weight.numel() == 0:
        return False
    if torch.cuda.get_device_capability(x.device) < (8, 0):
        return False
    if not nvrtc.available():
        nvrtc.warn_unavailable("the involution's aggregation")
        return False
    return True


def _launch(kernel: str, spec: Specialisation, launch: Launch, *tensors: Tensor) -> None:
    function = nvrtc.get_function(source(), spec.defines(), f"aggregate_{kernel}", tensors[0].device)
    args = [ctypes.c_void_p(t.data_ptr()) for t in tensors]
    function.launch(launch.grid, launch.block, launch.smem, [*args, launch.geometry])


def _device_limits(device: torch.device) -> tuple[int, int]:
    props = torch.cuda.get_device_properties(device)
    return props.shared_memory_per_block_optin, props.multi_processor_count


def launch_plan(kernel: str, spec: Specialisation, x: Tensor, weight: Tensor, padding: int) -> Launch:
    """:func:`plan` of ``kernel`` for x and the kernels on x's device; RuntimeError where no block fits."""
    n, c, h, w = x.shape
    ho, wo = weight.shape[-2:]
    groups = weight.shape[1] // (spec.kernel_size**2)
    rows, cols = (h, w) if kernel == "backward_input" else (ho, wo)
    launch = plan(kernel, spec, n, c, groups, rows, cols, (ho, wo), (h, w), padding, *_device_limits(x.device))
    if launch is None:
        raise RuntimeError(f"no block of the {kernel} kernel fits in shared memory for x {tuple(x.shape)}")
    return launch


def _channels_last(t: Tensor) -> Tensor:
    """``t`` dense channels_last at a 16-byte aligned address (copied where it is not)."""
    t = t.contiguous(memory_format=torch.channels_last)
    return t if _aligned(t) else t.clone(memory_format=torch.channels_last)


def aggregate(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> Tensor:
    """y (N, C, H_out, W_out), channels_last, of x (N, C, H, W) with the kernels (N, G*K*K, H_out, W_out), for the
    calls :func:`supports` accepts (the weight is made dense channels_last where it is not)."""
    spec = Specialisation(x.dtype, kernel_size, stride, dilation)
    weight = _channels_last(weight)
    n, c = x.shape[:2]
    y = torch.empty((n, c, *weight.shape[-2:]), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    with device_guard(x):
        _launch("forward", spec, launch_plan("forward", spec, x, weight, padding), x, weight, y)
    return y


def aggregate_backward(
    grad_out: Tensor, x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[Tensor, Tensor]:
    """(grad_x, grad_weight) for grad_out, two launches (the input gradient by gathering, the kernels' by a
    reduction over each group's channels; no atomics). grad_x is channels_last like x, grad_weight in the
    weight's memory format."""
    spec = Specialisation(x.dtype, kernel_size, stride, dilation)
    w_cl, gy = _channels_last(weight), _channels_last(grad_out)
    grad_x = torch.empty_like(x, memory_format=torch.channels_last)
    grad_w = torch.empty_like(w_cl, memory_format=torch.channels_last)
    with device_guard(x):
        _launch("backward_weight", spec, launch_plan("backward_weight", spec, x, w_cl, padding), gy, x, grad_w)
        _launch("backward_input", spec, launch_plan("backward_input", spec, x, w_cl, padding), gy, w_cl, grad_x)
    return grad_x, as_layout(grad_w, memory_format_of(weight))
