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
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import nvrtc
from ..common import as_layout, device_guard, memory_format_of

__all__ = [
    "KERNEL_SIZES",
    "Geometry",
    "Specialisation",
    "Tile",
    "aggregate",
    "aggregate_backward",
    "built",
    "choose_tile",
    "enabled",
    "entry_point",
    "launch_plan",
    "plan",
    "specialisation",
    "specialisations",
    "supports",
]

SOURCE = ("adaptconv.ops.involution", "aggregation_channels_last.cu")
HEADERS = (("adaptconv.ops", "vector_io.cuh"),)
#: pixels a thread owns along a row (RedNet's maps are 7 * 2^k wide)
PIXELS = 7
#: the most threads of a block, and the blocks of that size a multiprocessor must hold (the kernels'
#: __launch_bounds__: at most 128 registers a thread, so 16 warps a multiprocessor). Dilation 2 (not on RedNet's
#: path) is compiled without the cap: at K 7 its forward in 16 bits would spill.
MAX_THREADS = 256
MIN_BLOCKS = 2
#: a block's threads are a multiple of a warp (the plan counts warps a multiprocessor)
WARP = 32
#: warps a multiprocessor that the plan counts as enough: what the registers allow (MAX_THREADS * MIN_BLOCKS)
ENOUGH_WARPS = MAX_THREADS * MIN_BLOCKS // 32
#: threads a block aims at, at least
TARGET_THREADS = 128
#: shared memory the driver keeps for each resident block (bytes)
SMEM_RESERVED = 1024
#: the windows the kernels are compiled for; others go to Triton
KERNEL_SIZES = (1, 3, 5, 7)
STRIDES = (1, 2)
DILATIONS = (1, 2)
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
KERNELS = ("forward", "backward_weight", "backward_input")
#: which calls these kernels take: ``forward`` (the default: the forward here, both gradients on the Triton kernels),
#: ``1`` (the gradients too) or ``0`` (none). On an H200 the forward was 2-2.6x faster than Triton's at every layer of
#: RedNet-50, the gradients slower at most (docs/involution_kernel.md, "CUDA C++ kernels compiled by NVRTC").
ENV_SWITCH = "ADAPTCONV_NVRTC"
SWITCH_VALUES = {"0": (), "forward": ("forward",), "1": ("forward", "backward")}
DEFAULT_SWITCH = "forward"


@dataclass(frozen=True)
class Specialisation:
    """The compile-time constants of one compiled module: the element type and the window."""

    dtype: torch.dtype
    kernel_size: int
    stride: int
    dilation: int

    def defines(self) -> dict[str, int]:
        return dict(DTYPE=DTYPE_CODES[self.dtype], K=self.kernel_size, S=self.stride, D=self.dilation, P=PIXELS,
                    MAX_THREADS=MAX_THREADS, MIN_BLOCKS=MIN_BLOCKS if self.dilation == 1 else 1)  # fmt: skip

    @property
    def vector(self) -> int:
        """Elements of one 16-byte vector."""
        return 16 // self.element_size

    @property
    def element_size(self) -> int:
        return torch.empty((), dtype=self.dtype).element_size()


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
                ("N", "C", "H", "W", "Ho", "Wo", "G", "GC", "pad", "CB", "PXT", "RT", "col_tiles", "slices",
                 "row_tiles", "wstride", "TWO")]  # fmt: skip


@dataclass(frozen=True)
class Tile:
    """A block's share of the work: ``cb`` channels (whole groups), ``pxt`` threads of PIXELS columns, ``rt`` rows
    (one thread a row), and the shared memory that takes; ``wstride`` (forward, grad_w) and ``two`` (grad_x) as the
    kernels' Geometry."""

    cb: int
    pxt: int
    rt: int
    smem: int
    wstride: int
    two: int

    def threads(self, vector: int) -> int:
        return self.cb // vector * self.pxt * self.rt


@dataclass(frozen=True)
class Launch:
    """One kernel launch: its geometry, grid, block and dynamic shared memory in bytes."""

    geometry: Geometry
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    smem: int


def slot_elements(spec: Specialisation) -> int:
    """Elements of the input gradient's shared-memory slot of one kernel row (the kernels' SLOT): K elements starting
    at any of the vector's alignments, in whole vectors."""
    vw = spec.vector
    return math.ceil((vw - 1 + spec.kernel_size) / vw) * vw


def tile_smem(kernel: str, spec: Specialisation, cb: int, group_channels: int, pxt: int, rt: int) -> Tile:
    """The :class:`Tile` of these sizes, with the shared memory the kernels carve out of it."""
    k, s, d, vw, esize = spec.kernel_size, spec.stride, spec.dilation, spec.vector, spec.element_size
    tw, groups = pxt * PIXELS, cb // group_channels
    if kernel == "backward_input":
        # output columns whose kernels reach the block's tw input columns; two buffers of one kernel row each
        two = math.ceil((tw - 1 + (k - 1) * d) / s) + 1
        return Tile(cb, pxt, rt, 2 * rt * two * groups * slot_elements(spec) * esize, 0, two)
    wstride = math.ceil((vw - 1 + groups * k * k) / vw) * vw
    return Tile(cb, pxt, rt, rt * tw * wstride * esize, wstride, 0)


def _resident_warps(tile: Tile, vector: int, smem_per_sm: int) -> int:
    threads = tile.threads(vector)
    blocks = min(32, 2048 // threads, smem_per_sm // (tile.smem + SMEM_RESERVED))
    return blocks * threads // WARP


@functools.cache
def choose_tile(kernel: str, spec: Specialisation, c: int, groups: int, rows: int, cols: int,
                max_smem: int) -> Tile | None:  # fmt: skip
    """The block tile of ``kernel`` over a ``rows`` x ``cols`` map (the output map, or the input map for
    'backward_input'), from the shape alone (not the batch): among the tiles of whole groups and a multiple of 32
    threads (at most MAX_THREADS) that fit in ``max_smem``, the one with the most useful work per launched thread
    times the warps a multiprocessor can hold (counted up to ENOUGH_WARPS); then blocks of at least TARGET_THREADS,
    wider tiles (neighbouring threads share x's vectors in L1), less shared memory. None where none fits."""
    group_channels = c // groups
    lanes = group_channels // spec.vector
    smem_per_sm = max_smem + SMEM_RESERVED
    best, best_key = None, None
    for gpb in (d for d in range(1, groups + 1) if groups % d == 0):
        cv = gpb * lanes
        if cv > MAX_THREADS:
            break
        for pxt in range(1, min(math.ceil(cols / PIXELS), MAX_THREADS // cv) + 1):
            step = WARP // math.gcd(cv * pxt, WARP)  # rows that make the block a whole number of warps
            for rt in range(step, MAX_THREADS // (cv * pxt) + 1, step):
                tile = tile_smem(kernel, spec, gpb * group_channels, group_channels, pxt, rt)
                if tile.smem > max_smem:
                    continue
                tw = pxt * PIXELS
                useful = rows * cols / (math.ceil(rows / rt) * rt * math.ceil(cols / tw) * tw)
                warps = min(_resident_warps(tile, spec.vector, smem_per_sm), ENOUGH_WARPS)
                key = (round(useful * warps / ENOUGH_WARPS, 3), min(tile.threads(spec.vector), TARGET_THREADS), tw,
                       -tile.smem)  # fmt: skip
                if best_key is None or key > best_key:
                    best, best_key = tile, key
    return best


def plan(kernel: str, spec: Specialisation, n: int, c: int, groups: int, out_hw: tuple[int, int],
         in_hw: tuple[int, int], padding: int, max_smem: int) -> Launch | None:  # fmt: skip
    """The launch of ``kernel`` ('forward', 'backward_weight', 'backward_input') for a batch of ``n``: its tile from
    :func:`choose_tile` (the shape only), one block a tile; None where no block fits in ``max_smem``."""
    ho, wo = out_hw
    h, w = in_hw
    rows, cols = (h, w) if kernel == "backward_input" else (ho, wo)
    tile = choose_tile(kernel, spec, c, groups, rows, cols, max_smem)
    if tile is None:
        return None
    col_tiles, slices, row_tiles = math.ceil(cols / (tile.pxt * PIXELS)), c // tile.cb, math.ceil(rows / tile.rt)
    geometry = Geometry(n, c, h, w, ho, wo, groups, c // groups, padding, tile.cb, tile.pxt, tile.rt, col_tiles,
                        slices, row_tiles, tile.wstride, tile.two)  # fmt: skip
    return Launch(geometry, (col_tiles * slices * row_tiles, n, 1), (tile.threads(spec.vector), 1, 1), tile.smem)


def enabled(direction: str) -> bool:
    """Whether ``ADAPTCONV_NVRTC`` sends the aggregation's ``direction`` ('forward' or 'backward') here."""
    value = os.environ.get(ENV_SWITCH, DEFAULT_SWITCH)
    if value not in SWITCH_VALUES:
        raise ValueError(
            f"{ENV_SWITCH}={value!r} is not a setting: use forward (the default: the CUDA C++ forward, Triton "
            f"gradients), 1 (CUDA C++ forward and gradients) or 0 (the Triton kernels only)"
        )
    return direction in SWITCH_VALUES[value]


@functools.cache
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def _aligned(*tensors: Tensor) -> bool:
    return all(t.data_ptr() % 16 == 0 for t in tensors)


def supports(x: Tensor, weight: Tensor, kernel_size: int, stride: int, padding: int, dilation: int,
             direction: str = "forward") -> bool:  # fmt: skip
    """Whether these kernels take the aggregation's ``direction`` ('forward' or 'backward') of x by weight: switched
    on for it (:func:`enabled`), a CUDA device of compute capability 8.0 or newer with NVRTC, x dense channels_last
    and 16-byte aligned, a compiled window and dtype, whole 16-byte vectors of channels in a group, and at most 32
    of them a group."""
    if not enabled(direction):
        return False
    spec = specialisation(x.dtype, kernel_size, stride, dilation)
    if spec is None or not x.is_cuda or weight.dtype != x.dtype:
        return False
    if not x.is_contiguous(memory_format=torch.channels_last) or not _aligned(x):
        return False
    n, c = x.shape[:2]
    groups = weight.shape[1] // (kernel_size * kernel_size)
    lanes, rest = divmod(c // groups, spec.vector)
    if rest or lanes > 32 or lanes & (lanes - 1) or n > 65535 or x.numel() == 0 or weight.numel() == 0:
        return False
    if _capability(x.device) < (8, 0):
        return False
    if not nvrtc.available():
        nvrtc.warn_unavailable("the involution's aggregation")
        return False
    return built(spec, x.device)


#: (specialisation, device index) -> whether its module compiled and loaded there
_BUILT: dict[tuple[Specialisation, int], bool] = {}


def built(spec: Specialisation, device: torch.device) -> bool:
    """Whether ``spec``'s kernels compile and load on ``device`` (tried once a process; a GPU newer than this NVRTC,
    for one, fails): where they do not, one warning, and the Triton kernels serve."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (spec, index)
    if key not in _BUILT:
        try:
            nvrtc.get_function(source(), spec.defines(), "aggregate_forward", torch.device("cuda", index))
            _BUILT[key] = True
        except (nvrtc.CompileError, RuntimeError, OSError) as exc:
            _BUILT[key] = False
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.warn(
                f"the involution's CUDA C++ kernels ({spec}) could not be built for GPU {index}: {first_line}; the "
                f"Triton kernels serve instead (set {ENV_SWITCH}=0 to skip the attempt)",
                RuntimeWarning,
                stacklevel=2,
            )
    return _BUILT[key]


#: the group width (channels) whose grad_w entry point has its shuffles unrolled (RedNet's); others: ``_any``
UNROLLED_GROUP_CHANNELS = 16


def entry_point(kernel: str, group_channels: int) -> str:
    """The name of ``kernel``'s entry point in the source: grad_w has ``aggregate_backward_weight_gc16`` for groups
    of :data:`UNROLLED_GROUP_CHANNELS` channels and ``aggregate_backward_weight_any`` for the others."""
    if kernel != "backward_weight":
        return f"aggregate_{kernel}"
    return "aggregate_backward_weight_" + ("gc16" if group_channels == UNROLLED_GROUP_CHANNELS else "any")


def _launch(kernel: str, spec: Specialisation, launch: Launch, *tensors: Tensor) -> None:
    name = entry_point(kernel, launch.geometry.GC)
    function = nvrtc.get_function(source(), spec.defines(), name, tensors[0].device)
    args = [ctypes.c_void_p(t.data_ptr()) for t in tensors]
    function.launch(launch.grid, launch.block, launch.smem, [*args, launch.geometry])


def _max_smem(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).shared_memory_per_block_optin


def launch_plan(kernel: str, spec: Specialisation, x: Tensor, weight: Tensor, padding: int) -> Launch:
    """:func:`plan` of ``kernel`` for x and the kernels on x's device; RuntimeError where no block fits."""
    n, c, h, w = x.shape
    ho, wo = weight.shape[-2:]
    groups = weight.shape[1] // (spec.kernel_size**2)
    launch = plan(kernel, spec, n, c, groups, (ho, wo), (h, w), padding, _max_smem(x.device))
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
