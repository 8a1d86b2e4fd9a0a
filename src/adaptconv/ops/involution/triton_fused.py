"""Triton kernel of ``adaptconv::involution_fused``'s forward: the aggregation with the kernels made inside it.

As the spatial-tile aggregation kernel of ``triton_nchw.py`` (any layout: tensors are addressed through their strides),
with each tap's kernel values for the tile computed from the tile's reduced features and the span conv's weight and
bias, so that the (N, G*K*K, H_out, W_out) kernels are never written to memory.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_common import AUTOTUNE_OPTIONS, KEY, channel_mask, int64, tile, tile_config, tile_offsets, tuning_configs

# Smaller tiles for the fused kernel: it also holds a (BLOCK_R, pixels) tile of reduced features.
GPU_FUSED_CONFIGS = [tile_config(*t) for t in [(4, 16, 4), (2, 16, 4), (2, 32, 4), (4, 8, 2)]]
FUSED_CONFIGS = tuning_configs(GPU_FUSED_CONFIGS, tile_config(8, 16, 1))


@triton.jit
def _span_chunk(r_tile, s_ptr, tap, reduced_channels, ss_t, ss_r, r0, BLOCK_R: tl.constexpr):
    """sum_r span[tap, r] * reduced[r, pixels] over the chunk of BLOCK_R reduced channels from r0 (zero-padded)."""
    r = r0 + tl.arange(0, BLOCK_R)
    span = tl.load(s_ptr + tap * ss_t + r * ss_r, mask=r < reduced_channels, other=0.0).to(tl.float32)
    return tl.sum(r_tile * span[:, None], axis=0)


@triton.autotune(configs=FUSED_CONFIGS, key=[*KEY, "reduced_channels", "sx_c", "sr_c", "sy_c"], **AUTOTUNE_OPTIONS)
@triton.jit
def fused_forward_kernel(
    x_ptr, r_ptr, s_ptr, b_ptr, y_ptr,
    group_channels, groups, reduced_channels, height, width, height_out, width_out, grid_h, grid_w,
    sx_n, sx_c, sx_h, sx_w,
    sr_n, sr_c, sr_h, sr_w,
    ss_t, ss_r,
    sy_n, sy_c, sy_h, sy_w,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
    EVEN_C: tl.constexpr, WIDE: tl.constexpr,
):  # fmt: skip
    """y (N, C, H_out, W_out) from x and the kernels bias + span @ reduced, which are made here and never stored.

    As ``forward_kernel``, with the (pixels) kernel values of each tap computed from the tile's reduced features
    r (N, C_r, H_out, W_out) and the span weight s (G*K*K, C_r) and bias b (G*K*K): C_r multiply-adds per pixel
    and tap. Where C_r <= BLOCK_R the reduced tile is loaded once; otherwise in chunks for every tap.
    """
    if WIDE:
        sx_c, sx_h, sx_w = int64(sx_c), int64(sx_h), int64(sx_w)
        sr_c, sr_h, sr_w = int64(sr_c), int64(sr_h), int64(sr_w)
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
    rr = tl.arange(0, BLOCK_R)
    r_ptrs = r_ptr + n * sr_n + tile_offsets(rr, ho, wo, sr_c, sr_h, sr_w, WIDE)
    r_tile = tl.load(r_ptrs, mask=(rr < reduced_channels)[:, None] & out_mask[None, :], other=0.0).to(tl.float32)
    h0 = ho * STRIDE - PAD
    w0 = wo * STRIDE - PAD
    for cb in range(0, group_channels, BLOCK_C):
        c = cb + tl.arange(0, BLOCK_C)
        c_mask = channel_mask(c, group_channels, EVEN_C)
        x_ptrs = x_base + tile_offsets(c, h0, w0, sx_c, sx_h, sx_w, WIDE)
        acc = tl.zeros((BLOCK_C, BLOCK_H * BLOCK_W), dtype=tl.float32)
        for i in range(K):
            hi = h0 + i * DIL
            h_mask = out_mask & (hi >= 0) & (hi < height)
            x_row = x_ptrs + i * DIL * sx_h
            for j in tl.static_range(K):
                tap = g * K * K + i * K + j
                kern = _span_chunk(r_tile, s_ptr, tap, reduced_channels, ss_t, ss_r, 0, BLOCK_R)
                for rb in range(BLOCK_R, reduced_channels, BLOCK_R):  # only where C_r > BLOCK_R
                    chunk_mask = (rb + rr < reduced_channels)[:, None] & out_mask[None, :]
                    chunk = tl.load(r_ptrs + rb * sr_c, mask=chunk_mask, other=0.0).to(tl.float32)
                    kern += _span_chunk(chunk, s_ptr, tap, reduced_channels, ss_t, ss_r, rb, BLOCK_R)
                kern += tl.load(b_ptr + tap).to(tl.float32)
                wi = w0 + j * DIL
                mask = h_mask & (wi >= 0) & (wi < width)
                xv = tl.load(x_row + j * DIL * sx_w, mask=c_mask[:, None] & mask[None, :], other=0.0)
                acc += xv.to(tl.float32) * kern[None, :]
        y_ptrs = y_base + tile_offsets(c, ho, wo, sy_c, sy_h, sy_w, WIDE)
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=c_mask[:, None] & out_mask[None, :])
