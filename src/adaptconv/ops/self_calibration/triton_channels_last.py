"""Triton kernels of the self-calibration's memory-bound steps for channels_last CUDA tensors (CVPR 2020, Eq. 1-4): the
gate ``k3 * sigmoid(x + Up(y))`` forward and backward, and K2's average pooling forward and backward, one pass over
memory each. ``cuda.py`` launches them.

The gate kernels give each program the block of input pixels that read one pixel of y (the rows and columns
``Up`` maps to it: a rectangle, since nearest-neighbour source indices grow with the output index; computed in the
kernel with ATen's float32 arithmetic) and a chunk of channels. So y is read once per block, and the backward
pass sums the gradient of y over its block in registers: no atomics, and every output element is written by one
program.
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["gate_backward_kernel", "gate_forward_kernel", "pool_backward_kernel", "pool_forward_kernel"]


@triton.jit
def _first_reader(i, out_size, in_size, scale):
    """The first of ``out_size`` up-sampled positions whose source, ``min(floor(o * scale), in_size - 1)`` in
    float32 as ATen computes it, is ``i`` or more (``out_size`` if none)."""
    c = (i * out_size + in_size - 1) // in_size  # ceil(i * out / in): the answer in exact arithmetic, which
    lo = c - 1  # float32 rounding of the scale and the product can move by one either way
    src_lo = tl.minimum(tl.floor(lo.to(tl.float32) * scale).to(tl.int32), in_size - 1)
    src_c = tl.minimum(tl.floor(c.to(tl.float32) * scale).to(tl.int32), in_size - 1)
    first = tl.where((lo >= 0) & (src_lo >= i), lo, tl.where(src_c >= i, c, c + 1))
    return tl.minimum(first, out_size)


@triton.jit
def _gate_program(C, H, W, HY, WY, scale_h, scale_w, BLOCK_W: tl.constexpr, BLOCK_C: tl.constexpr):
    """(sample as int64, y's row and column, the rows [h0, h1) that read them, the columns w and channels c of
    the tile with their mask) of this program. The block is computed here, not looked up in a table: a table
    made on the device during CUDA-graph capture would be memory of the graph's pool that outlives it."""
    pid = tl.program_id(0)
    n = (pid // (HY * WY)).to(tl.int64)
    hy = (pid // WY) % HY
    wy = pid % WY
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    h0 = _first_reader(hy, H, HY, scale_h)
    h1 = _first_reader(hy + 1, H, HY, scale_h)
    w = _first_reader(wy, W, WY, scale_w) + tl.arange(0, BLOCK_W)
    mask = (w < _first_reader(wy + 1, W, WY, scale_w))[:, None] & (c < C)[None, :]
    return n, hy, wy, h0, h1, w, c, mask


@triton.jit
def gate_forward_kernel(x, k3, y, out, C, H, W, HY, WY, scale_h, scale_w,
                         sxn, sxc, sxh, sxw, skn, skc, skh, skw, syn, syc, syh, syw, son, soc, soh, sow,
                         BLOCK_W: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    n, hy, wy, h0, h1, w, c, mask = _gate_program(C, H, W, HY, WY, scale_h, scale_w, BLOCK_W, BLOCK_C)
    yv = tl.load(y + n * syn + hy * syh + wy * syw + c * syc, mask=c < C, other=0.0).to(tl.float32)
    for h in range(h0, h1):
        xv = tl.load(x + n * sxn + h * sxh + (w * sxw)[:, None] + (c * sxc)[None, :], mask=mask, other=0.0)
        kv = tl.load(k3 + n * skn + h * skh + (w * skw)[:, None] + (c * skc)[None, :], mask=mask, other=0.0)
        gate = tl.sigmoid(xv.to(tl.float32) + yv[None, :])
        o = out + n * son + h * soh + (w * sow)[:, None] + (c * soc)[None, :]
        tl.store(o, (kv.to(tl.float32) * gate).to(out.dtype.element_ty), mask=mask)


@triton.jit
def gate_backward_kernel(g, x, k3, y, gx, gk, gy, C, H, W, HY, WY, scale_h, scale_w,
                          sgn, sgc, sgh, sgw, sxn, sxc, sxh, sxw, skn, skc, skh, skw, syn, syc, syh, syw,
                          s1n, s1c, s1h, s1w, s2n, s2c, s2h, s2w, s3n, s3c, s3h, s3w,
                          BLOCK_W: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    # s1*, s2*, s3*: the strides of grad_x, grad_k3 and grad_y
    n, hy, wy, h0, h1, w, c, mask = _gate_program(C, H, W, HY, WY, scale_h, scale_w, BLOCK_W, BLOCK_C)
    yv = tl.load(y + n * syn + hy * syh + wy * syw + c * syc, mask=c < C, other=0.0).to(tl.float32)
    acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    for h in range(h0, h1):
        wc = (w * sgw)[:, None] + (c * sgc)[None, :]
        gv = tl.load(g + n * sgn + h * sgh + wc, mask=mask, other=0.0).to(tl.float32)
        kv = tl.load(k3 + n * skn + h * skh + (w * skw)[:, None] + (c * skc)[None, :], mask=mask, other=0.0)
        xv = tl.load(x + n * sxn + h * sxh + (w * sxw)[:, None] + (c * sxc)[None, :], mask=mask, other=0.0)
        gate = tl.sigmoid(xv.to(tl.float32) + yv[None, :])
        t = gv * kv.to(tl.float32) * gate * (1.0 - gate)  # zero where masked: gv is
        tl.store(gx + n * s1n + h * s1h + (w * s1w)[:, None] + (c * s1c)[None, :], t.to(gx.dtype.element_ty),
                 mask=mask)  # fmt: skip
        tl.store(gk + n * s2n + h * s2h + (w * s2w)[:, None] + (c * s2c)[None, :],
                 (gv * gate).to(gk.dtype.element_ty), mask=mask)  # fmt: skip
        acc += tl.sum(t, axis=0)
    tl.store(gy + n * s3n + hy * s3h + wy * s3w + c * s3c, acc.to(gy.dtype.element_ty), mask=c < C)


@triton.jit
def pool_forward_kernel(x, out, C, HS, WS, KH, KW, sxn, sxc, sxh, sxw, son, soc, soh, sow,
                         BLOCK_W: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    pid = tl.program_id(0)
    n = (pid // (HS * WS)).to(tl.int64)
    hs = (pid // WS) % HS
    ws = pid % WS
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    j = tl.arange(0, BLOCK_W)
    mask = (j < KW)[:, None] & (c < C)[None, :]
    cols = ((ws * KW + j) * sxw)[:, None] + (c * sxc)[None, :]
    acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    for i in range(KH):
        v = tl.load(x + n * sxn + (hs * KH + i) * sxh + cols, mask=mask, other=0.0)
        acc += tl.sum(v.to(tl.float32), axis=0)
    tl.store(out + n * son + hs * soh + ws * sow + c * soc, (acc / (KH * KW)).to(out.dtype.element_ty),
             mask=c < C)  # fmt: skip


@triton.jit
def pool_backward_kernel(g, out, C, H, W, HS, WS, KH, KW, pixels, sgn, sgc, sgh, sgw, son, soc, soh, sow,
                          BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    n = (p // (H * W)).to(tl.int64)
    h = (p // W) % H
    w = p % W
    hs = h // KH
    ws = w // KW
    valid = (p < pixels)[:, None] & (c < C)[None, :]
    inside = valid & ((hs < HS) & (ws < WS))[:, None]
    src = (n * sgn + hs * sgh + ws * sgw)[:, None] + (c * sgc)[None, :]
    v = tl.load(g + src, mask=inside, other=0.0).to(tl.float32) / (KH * KW)
    tl.store(out + (n * son + h * soh + w * sow)[:, None] + (c * soc)[None, :], v.to(out.dtype.element_ty),
             mask=valid)  # fmt: skip
