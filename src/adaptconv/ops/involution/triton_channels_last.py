"""Triton kernels of the involution aggregation and its gradients for channels-last tensors (channel axis unit-stride).

    y[n, c, h, w] = sum_{i, j} W[n, g*K*K + i*K + j, h, w] * x[n, c, h*s + i*d - p, w*s + j*d - p]

(Li et al., CVPR 2021, Eq. 4.) ``cuda.py`` launches these where x's channel axis has unit stride, and
the spatial-tile kernels of ``triton_nchw.py`` otherwise (there, runs of columns are the unit-stride axis).

Every kernel is launched on a 1-D grid of (sample, group, pixel block) programs. A program owns BLOCK_P pixels
(flattened over the map) of one group and works on 3-D register tiles (pixels, one row of taps, channels): the
KP = next_power_of_two(K) column taps of one kernel row i at a time, and up to BLOCK_C channels of the group.
So the kernel values of a row are one (pixels, KP) tile, read once for all channels of the group; x is one
(pixels, KP, channels) gather whose channel axis is contiguous (16-byte vectors per pixel and tap); the sums over
taps or channels are reductions of the tile along one axis; and the kernel gradient of a row is stored as one
(pixels, KP) tile whose tap axis is contiguous in channels_last, instead of one scattered element per pixel and tap.
Tensors are still addressed through their element strides, so any layout gives the right result.

Offsets inside one sample are int32 unless WIDE (then int64); the sample offset n * stride_n is always int64.
Nothing here uses atomics: every output element is written by exactly one program, so results are deterministic.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_common import AUTOTUNE_OPTIONS, KEY, backward_bases, channel_mask, int64, tuning_configs


@triton.jit
def _program(pid, groups, pixels, BLOCK_P: tl.constexpr):
    """(sample as int64, group, the block's flat pixel indices) of program ``pid``."""
    blocks = tl.cdiv(pixels, BLOCK_P)
    ng = pid // blocks
    p = (pid % blocks) * BLOCK_P + tl.arange(0, BLOCK_P)
    return (ng // groups).to(tl.int64), ng % groups, p


@triton.jit
def _gather(base, pix, c, stride_c, mask, cm):
    """(pixels, taps, channels) tile at ``base + pix[p, t] + c * stride_c``, as float32; zero where masked."""
    ptrs = base + pix[:, :, None] + (c * stride_c)[None, None, :]
    return tl.load(ptrs, mask=mask[:, :, None] & cm[None, None, :], other=0.0).to(tl.float32)


@triton.jit
def _add_taps(acc, prod, DEFER_TAP_SUM: tl.constexpr):
    """acc += one kernel row's (pixels, taps, channels) products: kept per tap (acc (P, KP, C), summed once at the
    end) or summed over the row's taps now (acc (P, 1, C))."""
    if DEFER_TAP_SUM:
        return acc + prod
    else:
        return acc + tl.sum(prod, axis=1, keep_dims=True)


# One block shape under the interpreter (a large one: its cost is per program); on a GPU the autotuner picks among
# GPU_CONFIGS per layer shape, dtype and layout (see ``tuning_configs``).
INTERPRETED = not isinstance(_program, triton.runtime.JITFunction)
# (BLOCK_P, warps), each with the per-tap products summed per kernel row or once at the end (DEFER_TAP_SUM: no
# cross-thread reduction in the row loop, but a KP times larger accumulator). Neither wins at every layer shape on
# an H100; (16, 2), (32, 4) and (64, 8) ran 2-4x slower at most shapes (benchmarks/involution_configs.py, results
# in benchmarks/results/involution_configs-channels_last*.json), blocks of 128 or 256 pixels on 2-4 warps no
# faster. The first is the one ADAPTCONV_AUTOTUNE=0 runs.
GPU_CONFIGS = [
    triton.Config({"BLOCK_P": bp, "DEFER_TAP_SUM": defer}, num_warps=nw)
    for bp, nw in [(64, 4), (128, 8), (64, 2)]
    for defer in (False, True)
]
CONFIGS = tuning_configs(GPU_CONFIGS, triton.Config({"BLOCK_P": 64, "DEFER_TAP_SUM": True}, num_warps=4))
#: the kernels an aggregation and its backward launch, in order
KERNELS = ("forward_kernel", "backward_kernel")


@triton.autotune(configs=CONFIGS, key=[*KEY, "sx_c", "sw_c", "sy_c"], **AUTOTUNE_OPTIONS)
@triton.jit
def forward_kernel(
    x_ptr, w_ptr, y_ptr,
    group_channels, groups, height, width, height_out, width_out,
    sx_n, sx_c, sx_h, sx_w,
    sw_n, sw_c, sw_h, sw_w,
    sy_n, sy_c, sy_h, sy_w,
    K: tl.constexpr, KP: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, EVEN_C: tl.constexpr, WIDE: tl.constexpr,
    DEFER_TAP_SUM: tl.constexpr,
):  # fmt: skip
    """y (N, C, H_out, W_out) from x (N, C, H, W) and the kernels w (N, G*K*K, H_out, W_out)."""
    if WIDE:  # every product with a stride in int64
        sx_c, sx_h, sx_w = int64(sx_c), int64(sx_h), int64(sx_w)
        sw_c, sw_h, sw_w = int64(sw_c), int64(sw_h), int64(sw_w)
        sy_c, sy_h, sy_w = int64(sy_c), int64(sy_h), int64(sy_w)
    n, g, p = _program(tl.program_id(0), groups, height_out * width_out, BLOCK_P)
    p_mask = p < height_out * width_out
    ho = p // width_out
    wo = p % width_out
    j = tl.arange(0, KP)
    wi = wo[:, None] * STRIDE - PAD + j[None, :] * DIL  # (pixels, KP) input columns of the row's taps
    col_mask = p_mask[:, None] & (j < K)[None, :] & (wi >= 0) & (wi < width)
    h0 = ho * STRIDE - PAD
    c0 = (g * group_channels).to(tl.int64)
    x_base = x_ptr + n * sx_n + c0 * sx_c
    y_base = y_ptr + n * sy_n + c0 * sy_c
    w_base = w_ptr + n * sw_n + (g * K * K).to(tl.int64) * sw_c
    x_pix = h0[:, None] * sx_h + wi * sx_w  # row i adds i * DIL * sx_h
    w_ptrs = w_base + (ho * sw_h + wo * sw_w)[:, None] + (j * sw_c)[None, :]  # row i adds i * K * sw_c
    w_mask = p_mask[:, None] & (j < K)[None, :]
    for cb in range(0, group_channels, BLOCK_C):
        c = cb + tl.arange(0, BLOCK_C)
        cm = channel_mask(c, group_channels, EVEN_C)
        acc = tl.zeros((BLOCK_P, KP if DEFER_TAP_SUM else 1, BLOCK_C), dtype=tl.float32)
        for i in range(K):
            hi = h0 + i * DIL
            mask = col_mask & ((hi >= 0) & (hi < height))[:, None]
            kern = tl.load(w_ptrs + i * K * sw_c, mask=w_mask, other=0.0).to(tl.float32)
            xv = _gather(x_base, x_pix + i * DIL * sx_h, c, sx_c, mask, cm)
            acc = _add_taps(acc, xv * kern[:, :, None], DEFER_TAP_SUM)
        y_ptrs = y_base + (ho * sy_h + wo * sy_w)[:, None] + (c * sy_c)[None, :]
        tl.store(y_ptrs, tl.sum(acc, axis=1).to(y_ptr.dtype.element_ty), mask=p_mask[:, None] & cm[None, :])


@triton.autotune(configs=CONFIGS, key=[*KEY, "sgy_c", "sx_c", "sw_c", "sgx_c", "sgw_c"], **AUTOTUNE_OPTIONS)
@triton.jit
def backward_kernel(
    gy_ptr, x_ptr, w_ptr, gx_ptr, gw_ptr,
    group_channels, groups, height, width, height_out, width_out,
    sgy_n, sgy_c, sgy_h, sgy_w,
    sx_n, sx_c, sx_h, sx_w,
    sw_n, sw_c, sw_h, sw_w,
    sgx_n, sgx_c, sgx_h, sgx_w,
    sgw_n, sgw_c, sgw_h, sgw_w,
    K: tl.constexpr, KP: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, EVEN_C: tl.constexpr, WIDE: tl.constexpr,
    DEFER_TAP_SUM: tl.constexpr,
):  # fmt: skip
    """Both gradients in one launch: gw (N, G*K*K, H_out, W_out) and gx (N, C, H, W).

    The grid covers max(H_out * W_out, H * W) pixels a group; a program's block p is taken twice:
      as output pixels (p < H_out * W_out): gw[t, p] = sum_c gy[c, p] * x[c, tap t of p], a reduction over the
        channel axis, kept in registers over all channel chunks and stored once per kernel row;
      as input pixels q (q < H * W): the gather gx[c, q] = sum_t W[t, o] * gy[c, o] over the taps t that reach q
        from an output pixel o, i.e. where s divides q + p - i*d (per row) and q + p - j*d (per column); the
        numerators are shifted by s*K*d to stay >= 0, where // and % agree in every convention.
    """
    if WIDE:  # every product with a stride in int64
        sgy_c, sgy_h, sgy_w = int64(sgy_c), int64(sgy_h), int64(sgy_w)
        sx_c, sx_h, sx_w = int64(sx_c), int64(sx_h), int64(sx_w)
        sw_c, sw_h, sw_w = int64(sw_c), int64(sw_h), int64(sw_w)
        sgx_c, sgx_h, sgx_w = int64(sgx_c), int64(sgx_h), int64(sgx_w)
        sgw_c, sgw_h, sgw_w = int64(sgw_c), int64(sgw_h), int64(sgw_w)
    n, g, p = _program(tl.program_id(0), groups, tl.maximum(height_out * width_out, height * width), BLOCK_P)
    gy_base, x_base, w_base, gx_base, gw_base = backward_bases(
        gy_ptr, x_ptr, w_ptr, gx_ptr, gw_ptr, n, g, group_channels, K,
        sgy_n, sgy_c, sx_n, sx_c, sw_n, sw_c, sgx_n, sgx_c, sgw_n, sgw_c,
    )  # fmt: skip
    j = tl.arange(0, KP)

    # Kernel gradient, on the output pixels of the block.
    o_mask = p < height_out * width_out
    ho = p // width_out
    wo = p % width_out
    wi = wo[:, None] * STRIDE - PAD + j[None, :] * DIL
    col_mask = o_mask[:, None] & (j < K)[None, :] & (wi >= 0) & (wi < width)
    h0 = ho * STRIDE - PAD
    x_pix = h0[:, None] * sx_h + wi * sx_w
    gy_out = ho * sgy_h + wo * sgy_w
    gw_ptrs = gw_base + (ho * sgw_h + wo * sgw_w)[:, None] + (j * sgw_c)[None, :]
    for i in range(K):
        hi = h0 + i * DIL
        mask = col_mask & ((hi >= 0) & (hi < height))[:, None]
        part = tl.zeros((BLOCK_P, KP), dtype=tl.float32)
        for cb in range(0, group_channels, BLOCK_C):
            c = cb + tl.arange(0, BLOCK_C)
            cm = channel_mask(c, group_channels, EVEN_C)
            gy_ptrs = gy_base + gy_out[:, None] + (c * sgy_c)[None, :]
            gy = tl.load(gy_ptrs, mask=o_mask[:, None] & cm[None, :], other=0.0).to(tl.float32)
            xv = _gather(x_base, x_pix + i * DIL * sx_h, c, sx_c, mask, cm)
            part += tl.sum(xv * gy[:, None, :], axis=2)
        tl.store(gw_ptrs + i * K * sgw_c, part.to(gw_ptr.dtype.element_ty), mask=o_mask[:, None] & (j < K)[None, :])

    # Input gradient, on the input pixels of the block.
    q_mask = p < height * width
    qh = p // width
    qw = p % width
    num_w = qw[:, None] + PAD - j[None, :] * DIL + STRIDE * K * DIL  # >= 0
    wo_t = num_w // STRIDE - K * DIL  # the output column each column tap reaches q from
    col_mask = q_mask[:, None] & (j < K)[None, :] & (num_w % STRIDE == 0) & (wo_t >= 0) & (wo_t < width_out)
    for cb in range(0, group_channels, BLOCK_C):
        c = cb + tl.arange(0, BLOCK_C)
        cm = channel_mask(c, group_channels, EVEN_C)
        acc = tl.zeros((BLOCK_P, KP if DEFER_TAP_SUM else 1, BLOCK_C), dtype=tl.float32)
        for i in range(K):
            num_h = qh + PAD - i * DIL + STRIDE * K * DIL
            ho_t = num_h // STRIDE - K * DIL
            row_ok = (num_h % STRIDE == 0) & (ho_t >= 0) & (ho_t < height_out)
            mask = col_mask & row_ok[:, None]
            kern_ptrs = w_base + ((ho_t * sw_h)[:, None] + wo_t * sw_w) + ((i * K + j) * sw_c)[None, :]
            kern = tl.load(kern_ptrs, mask=mask, other=0.0).to(tl.float32)
            gyv = _gather(gy_base, (ho_t * sgy_h)[:, None] + wo_t * sgy_w, c, sgy_c, mask, cm)
            acc = _add_taps(acc, gyv * kern[:, :, None], DEFER_TAP_SUM)
        gx_ptrs = gx_base + (qh * sgx_h + qw * sgx_w)[:, None] + (c * sgx_c)[None, :]
        tl.store(gx_ptrs, tl.sum(acc, axis=1).to(gx_ptr.dtype.element_ty), mask=q_mask[:, None] & cm[None, :])
