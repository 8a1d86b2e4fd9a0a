"""Triton kernels of the involution aggregation (Li et al., CVPR 2021, Eq. 4) and of its gradients, for NCHW and
every other layout whose channel axis is not unit-stride (channels_last tensors go to ``triton_channels_last.py``).

    y[n, c, h, w] = sum_{i, j} W[n, g*K*K + i*K + j, h, w] * x[n, c, h*s + i*d - p, w*s + j*d - p]

Every kernel is launched on a 1-D grid of (sample, group, spatial tile) programs. A program owns a tile of
BLOCK_C channels of one group by BLOCK_H x BLOCK_W pixels of the output grid and loops over the group's channels
in chunks of BLOCK_C, so each per-pixel kernel value is read from memory once and reused for all channels of its
group. Tensors are addressed through their element strides, so one kernel serves contiguous, channels_last and
other strided layouts; Triton specialises strides equal to 1, which tells it which axis is contiguous.

Offsets inside one sample are int32 unless WIDE (then int64); the sample offset n * stride_n is always int64.
Nothing here uses atomics: every output element is written by exactly one program, so results are deterministic.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_common import (
    AUTOTUNE_OPTIONS,
    KEY,
    backward_bases,
    channel_mask,
    int64,
    pixel_offsets,
    tile,
    tile_config,
    tile_offsets,
    tuning_configs,
)

# (BLOCK_H, BLOCK_W, warps): 8 or 16 elements of a 16-channel group a thread, and narrow tiles for 7x7 and 14x14 maps.
GPU_CONFIGS = [tile_config(*t) for t in [(4, 16, 4), (2, 32, 4), (4, 32, 8), (4, 32, 4), (2, 64, 4), (8, 32, 8),
                                          (8, 16, 4), (8, 8, 2), (16, 8, 4)]]  # fmt: skip
CONFIGS = tuning_configs(GPU_CONFIGS, tile_config(8, 16, 1))


@triton.autotune(configs=CONFIGS, key=[*KEY, "sx_c", "sw_c", "sy_c"], **AUTOTUNE_OPTIONS)
@triton.jit
def forward_kernel(
    x_ptr, w_ptr, y_ptr,
    group_channels, groups, height, width, height_out, width_out, grid_h, grid_w,
    sx_n, sx_c, sx_h, sx_w,
    sw_n, sw_c, sw_h, sw_w,
    sy_n, sy_c, sy_h, sy_w,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr, EVEN_C: tl.constexpr, WIDE: tl.constexpr,
):  # fmt: skip
    """y (N, C, H_out, W_out) from x (N, C, H, W) and the kernels w (N, G*K*K, H_out, W_out)."""
    if WIDE:  # every product with a stride in int64, the scalar tap offsets included
        sx_c, sx_h, sx_w = int64(sx_c), int64(sx_h), int64(sx_w)
        sw_c, sw_h, sw_w = int64(sw_c), int64(sw_h), int64(sw_w)
        sy_c, sy_h, sy_w = int64(sy_c), int64(sy_h), int64(sy_w)
    pid = tl.program_id(0)
    tiles = tl.cdiv(grid_h, BLOCK_H) * tl.cdiv(grid_w, BLOCK_W)
    ng = pid // tiles
    n = (ng // groups).to(tl.int64)
    g = ng % groups
    ho, wo = tile(pid % tiles, grid_w, BLOCK_H, BLOCK_W)
    out_mask = (ho < height_out) & (wo < width_out)
    c0 = (g * group_channels).to(tl.int64)
    x_base = x_ptr + n * sx_n + c0 * sx_c
    y_base = y_ptr + n * sy_n + c0 * sy_c
    w_base = w_ptr + n * sw_n + (g * K * K).to(tl.int64) * sw_c
    h0 = ho * STRIDE - PAD  # the window's top-left input pixel
    w0 = wo * STRIDE - PAD
    w_ptrs = w_base + pixel_offsets(ho, wo, sw_h, sw_w, WIDE)[None, :]
    for cb in range(0, group_channels, BLOCK_C):
        c = cb + tl.arange(0, BLOCK_C)
        c_mask = channel_mask(c, group_channels, EVEN_C)
        # Pointers to tap (0, 0); tap (i, j) adds a scalar, which for unrolled j on a unit-stride axis is an immediate.
        x_ptrs = x_base + tile_offsets(c, h0, w0, sx_c, sx_h, sx_w, WIDE)
        acc = tl.zeros((BLOCK_C, BLOCK_H * BLOCK_W), dtype=tl.float32)
        for i in range(K):
            hi = h0 + i * DIL
            h_mask = out_mask & (hi >= 0) & (hi < height)
            x_row = x_ptrs + i * DIL * sx_h
            for j in tl.static_range(K):
                wi = w0 + j * DIL
                mask = h_mask & (wi >= 0) & (wi < width)
                kern = tl.load(w_ptrs + (i * K + j) * sw_c, mask=out_mask[None, :], other=0.0)
                xv = tl.load(x_row + j * DIL * sx_w, mask=c_mask[:, None] & mask[None, :], other=0.0)
                acc += xv.to(tl.float32) * kern.to(tl.float32)
        y_ptrs = y_base + tile_offsets(c, ho, wo, sy_c, sy_h, sy_w, WIDE)
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=c_mask[:, None] & out_mask[None, :])


@triton.autotune(configs=CONFIGS, key=[*KEY, "sgy_c", "sx_c", "sw_c", "sgx_c", "sgw_c"], **AUTOTUNE_OPTIONS)
@triton.jit
def backward_kernel(
    gy_ptr, x_ptr, w_ptr, gx_ptr, gw_ptr,
    group_channels, groups, height, width, height_out, width_out, grid_h, grid_w,
    sgy_n, sgy_c, sgy_h, sgy_w,
    sx_n, sx_c, sx_h, sx_w,
    sw_n, sw_c, sw_h, sw_w,
    sgx_n, sgx_c, sgx_h, sgx_w,
    sgw_n, sgw_c, sgw_h, sgw_w,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr, EVEN_C: tl.constexpr, WIDE: tl.constexpr,
):  # fmt: skip
    """Both gradients in one pass over grad_y: gx (N, C, H, W) and gw (N, G*K*K, H_out, W_out).

    A tile (qh, qw) of the output grid gives
      gw[t, qh, qw] = sum_c gy[c, qh, qw] * x[c, qh*s + i*d - p, qw*s + j*d - p]   (a reduction in registers), and
      gx at the s*s input pixels (qh*s + rh, qw*s + rw): the gather
      gx[c, hi, wi] = sum_{taps (i, j) with (hi + p - i*d) % s == 0 ...} W[t, ho, wo] * gy[c, ho, wo],
      ho = (hi + p - i*d) / s.
    Splitting the input pixels by phase (rh, rw) makes "does tap (i, j) reach them" one scalar test per program
    rather than a mask per pixel. The grid covers max(H_out, ceil(H/s)) rows (and likewise columns) so that
    every input pixel is owned by one program even where H_out * s < H.
    gw is stored per channel chunk: the first chunk writes it, later ones add to it (only groups wider than
    BLOCK_C have more than one chunk; the caller then passes a float32 gw so the partial sums keep precision).
    """
    if WIDE:  # every product with a stride in int64, the scalar tap offsets included
        sgy_c, sgy_h, sgy_w = int64(sgy_c), int64(sgy_h), int64(sgy_w)
        sx_c, sx_h, sx_w = int64(sx_c), int64(sx_h), int64(sx_w)
        sw_c, sw_h, sw_w = int64(sw_c), int64(sw_h), int64(sw_w)
        sgx_c, sgx_h, sgx_w = int64(sgx_c), int64(sgx_h), int64(sgx_w)
        sgw_c, sgw_h, sgw_w = int64(sgw_c), int64(sgw_h), int64(sgw_w)
    pid = tl.program_id(0)
    tiles = tl.cdiv(grid_h, BLOCK_H) * tl.cdiv(grid_w, BLOCK_W)
    ng = pid // tiles
    n = (ng // groups).to(tl.int64)
    g = ng % groups
    qh, qw = tile(pid % tiles, grid_w, BLOCK_H, BLOCK_W)
    out_mask = (qh < height_out) & (qw < width_out)
    gy_base, x_base, w_base, gx_base, gw_base = backward_bases(
        gy_ptr, x_ptr, w_ptr, gx_ptr, gw_ptr, n, g, group_channels, K,
        sgy_n, sgy_c, sx_n, sx_c, sw_n, sw_c, sgx_n, sgx_c, sgw_n, sgw_c,
    )  # fmt: skip
    h0 = qh * STRIDE - PAD  # the window's top-left input pixel
    w0 = qw * STRIDE - PAD
    gw_ptrs = gw_base + pixel_offsets(qh, qw, sgw_h, sgw_w, WIDE)
    w_ptrs = w_base + pixel_offsets(qh, qw, sw_h, sw_w, WIDE)[None, :]
    for cb in range(0, group_channels, BLOCK_C):
        c = cb + tl.arange(0, BLOCK_C)
        c_mask = channel_mask(c, group_channels, EVEN_C)
        gy_ptrs = gy_base + tile_offsets(c, qh, qw, sgy_c, sgy_h, sgy_w, WIDE)
        gy = tl.load(gy_ptrs, mask=c_mask[:, None] & out_mask[None, :], other=0.0).to(tl.float32)
        # Kernel gradient. Taps as in the forward: pointers to tap (0, 0) plus a scalar per tap.
        x_ptrs = x_base + tile_offsets(c, h0, w0, sx_c, sx_h, sx_w, WIDE)
        for i in range(K):
            hi = h0 + i * DIL
            h_mask = out_mask & (hi >= 0) & (hi < height)
            x_row = x_ptrs + i * DIL * sx_h
            for j in tl.static_range(K):
                wi = w0 + j * DIL
                mask = h_mask & (wi >= 0) & (wi < width)
                xv = tl.load(x_row + j * DIL * sx_w, mask=c_mask[:, None] & mask[None, :], other=0.0)
                part = tl.sum(gy * xv.to(tl.float32), axis=0)
                tap_ptrs = gw_ptrs + (i * K + j) * sgw_c
                if cb > 0:
                    part += tl.load(tap_ptrs, mask=out_mask, other=0.0).to(tl.float32)
                tl.store(tap_ptrs, part.to(gw_ptr.dtype.element_ty), mask=out_mask)
        # Input gradient, one phase (rh, rw) of input pixels at a time: tap (i, j) reaches the phase's pixels
        # (qh*s + rh, qw*s + rw) from the output pixels (qh + dh, qw + dw) when s divides rh + p - i*d (then
        # dh = (rh + p - i*d) / s), and likewise for columns. The numerators are shifted by a multiple of s to
        # stay >= 0, where // and % agree in every convention.
        for rh in tl.static_range(STRIDE):
            hi = qh * STRIDE + rh
            for rw in tl.static_range(STRIDE):
                wi = qw * STRIDE + rw
                in_mask = (hi < height) & (wi < width)
                acc = tl.zeros((BLOCK_C, BLOCK_H * BLOCK_W), dtype=tl.float32)
                for i in range(K):
                    num_h = rh + PAD - i * DIL + STRIDE * K * DIL
                    if num_h % STRIDE == 0:
                        dh = num_h // STRIDE - K * DIL
                        ho = qh + dh
                        h_mask = in_mask & (ho >= 0) & (ho < height_out)
                        for j in tl.static_range(K):
                            num_w = rw + PAD - j * DIL + STRIDE * K * DIL
                            if num_w % STRIDE == 0:  # decided at compile time
                                dw = num_w // STRIDE - K * DIL
                                wo = qw + dw
                                mask = h_mask & (wo >= 0) & (wo < width_out)
                                kern = tl.load(
                                    w_ptrs + ((i * K + j) * sw_c + dh * sw_h + dw * sw_w), mask=mask[None, :], other=0.0
                                )
                                gyv = tl.load(
                                    gy_ptrs + (dh * sgy_h + dw * sgy_w), mask=c_mask[:, None] & mask[None, :], other=0.0
                                )
                                acc += gyv.to(tl.float32) * kern.to(tl.float32)
                gx_ptrs = gx_base + tile_offsets(c, hi, wi, sgx_c, sgx_h, sgx_w, WIDE)
                tl.store(gx_ptrs, acc.to(gx_ptr.dtype.element_ty), mask=c_mask[:, None] & in_mask[None, :])
