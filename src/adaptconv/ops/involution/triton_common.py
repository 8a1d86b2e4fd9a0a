"""What the involution's Triton kernels share: index helpers, the tile of the spatial-tile kernels, the tuning.

Offsets inside one sample are int32 unless WIDE (then int64); the sample offset n * stride_n is always int64.
"""

from __future__ import annotations

import inspect
import os

import triton
import triton.language as tl

__all__ = ["AUTOTUNE_OPTIONS", "INTERPRETED", "KEY", "backward_bases", "channel_mask", "int64", "pixel_offsets",
           "tile", "tile_config", "tile_offsets", "tuning_configs"]  # fmt: skip


@triton.jit
def tile(pid, grid_w, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """Row and column indices of the pixels of spatial tile ``pid``, flattened to BLOCK_H * BLOCK_W."""
    tiles_w = tl.cdiv(grid_w, BLOCK_W)
    offs = tl.arange(0, BLOCK_H * BLOCK_W)
    # BLOCK_W is a power of two, so // and % are shifts, and Triton sees runs of BLOCK_W contiguous columns.
    rows = (pid // tiles_w) * BLOCK_H + offs // BLOCK_W
    cols = (pid % tiles_w) * BLOCK_W + offs % BLOCK_W
    return rows, cols


@triton.jit
def channel_mask(c, group_channels, EVEN_C: tl.constexpr):
    # A constant mask where every chunk is full: loads along a contiguous channel axis can then be vectorised.
    if EVEN_C:
        return tl.full(c.shape, 1, tl.int1)
    return c < group_channels


@triton.jit
def int64(v):
    return v * tl.full([], 1, tl.int64)


@triton.jit
def pixel_offsets(h, w, stride_h, stride_w, WIDE: tl.constexpr):
    if WIDE:
        h = h.to(tl.int64)
        w = w.to(tl.int64)
    return h * stride_h + w * stride_w


@triton.jit
def tile_offsets(c, h, w, stride_c, stride_h, stride_w, WIDE: tl.constexpr):
    """Offsets of a (channels, pixels) tile."""
    if WIDE:
        c = c.to(tl.int64)
    return c[:, None] * stride_c + pixel_offsets(h, w, stride_h, stride_w, WIDE)[None, :]


@triton.jit
def backward_bases(gy_ptr, x_ptr, w_ptr, gx_ptr, gw_ptr, n, g, group_channels, K: tl.constexpr,
                    sgy_n, sgy_c, sx_n, sx_c, sw_n, sw_c, sgx_n, sgx_c, sgw_n, sgw_c):  # fmt: skip
    """Pointers to sample n's group g in grad_y, x, w, grad_x and grad_w: its first channel (of grad_y, x, grad_x)
    and its first tap (of w and grad_w); every offset in int64."""
    c0 = (g * group_channels).to(tl.int64)
    t0 = (g * K * K).to(tl.int64)
    return (gy_ptr + n * sgy_n + c0 * sgy_c, x_ptr + n * sx_n + c0 * sx_c, w_ptr + n * sw_n + t0 * sw_c,
            gx_ptr + n * sgx_n + c0 * sgx_c, gw_ptr + n * sgw_n + t0 * sgw_c)  # fmt: skip


# Under TRITON_INTERPRET=1 triton.jit gives an interpreted function: then one tile shape and no benchmarking (a
# large tile, since the interpreter's cost is per program). On a GPU the autotuner picks the tile shape per layer
# shape, dtype and layout (the channel strides in the key tell contiguous from channels_last).
INTERPRETED = not isinstance(tile, triton.runtime.JITFunction)


def tuning_configs(gpu: list[triton.Config], interpreted: triton.Config) -> list[triton.Config]:
    """What the autotuner chooses from: ``interpreted`` alone under the interpreter; on a GPU the list ``gpu``, or
    only its first entry where the environment sets ADAPTCONV_AUTOTUNE=0 (no tuning on the first call of each
    shape: a quicker start and quicker tests, at the cost of speed)."""
    if INTERPRETED:
        return [interpreted]
    return gpu[:1] if os.environ.get("ADAPTCONV_AUTOTUNE", "1") == "0" else gpu


def tile_config(block_h: int, block_w: int, warps: int) -> triton.Config:
    return triton.Config({"BLOCK_H": block_h, "BLOCK_W": block_w}, num_warps=warps)


#: The autotuners' options: their results kept in Triton's on-disk cache (``cache_results``, Triton 3.2 and newer), so
#: that a shape is tuned once on a machine, not again in every process (a new training run, each validation). The key
#: holds no batch size: a new batch size or a partial batch tunes nothing.
AUTOTUNE_OPTIONS = {"cache_results": True} if "cache_results" in inspect.signature(triton.autotune).parameters else {}

# The autotuners' key: the shape and window (each family adds the strides that tell layouts apart).
KEY = ["group_channels", "groups", "height", "width", "height_out", "width_out", "K", "STRIDE", "PAD", "DIL"]
