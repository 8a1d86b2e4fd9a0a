"""Triton kernels of the self-calibration's memory-bound steps (``calibration``): the gate ``k3 * sigmoid(x +
Up(y))`` forward and backward, and K2's average pooling forward and backward, one pass over memory each.

Importing this module registers them as the CUDA implementations of ``adaptconv::calibrate``,
``adaptconv::calibrate_backward``, ``adaptconv::calibration_pool`` and ``adaptconv::calibration_pool_backward``
for channels_last tensors of one dtype (float32, float16, bfloat16); other layouts and dtypes, and the CPU, keep the
references. The launchers also run on CPU tensors under ``TRITON_INTERPRET=1``, which is how the tests check them.

The gate kernels give each program the block of input pixels that read one pixel of y (the rows and columns
``Up`` maps to it: a rectangle, since nearest-neighbour source indices grow with the output index; computed in the
kernel with ATen's float32 arithmetic) and a chunk of channels. So y is read once per block, and the backward
pass sums the gradient of y over its block in registers: no atomics, and every output element is written by one
program.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ._tensors import INT32_MAX, device_guard, empty_like_layout, is_channels_last, sample_extent
from .calibration import (
    calibrate_backward_reference,
    calibrate_reference,
    calibration_pool_backward_reference,
    calibration_pool_reference,
    nearest_source_index,
)

try:
    import triton
    import triton.language as tl
except ModuleNotFoundError as error:
    if (error.name or "").split(".")[0] != "triton":
        raise
    triton = None

__all__ = ["AVAILABLE", "calibrate_backward_triton", "calibrate_triton", "calibration_pool_backward_triton",
           "calibration_pool_triton"]  # fmt: skip

#: whether triton is importable, i.e. whether the CUDA kernels are registered
AVAILABLE = triton is not None

_SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Elements of one (columns, channels) register tile; the widest block of columns the gate kernels take.
_TILE = 512
_MAX_BLOCK_W = 256
_BLOCK_P = 32  # pixels a program of the pooling's backward kernel
# Below this many elements of x the references serve the CUDA ops: on small maps (batch 1) the kernels' launch
# costs more host time than the four small PyTorch launches they replace, and saves no device time worth it
# (docs/scnet_speed.md: SCNet-50 at batch 1 was slower fused, at batch 256 much faster).
MIN_ELEMENTS = 1 << 20

if AVAILABLE:

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
    def _gate_forward_kernel(x, k3, y, out, C, H, W, HY, WY, scale_h, scale_w,
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
    def _gate_backward_kernel(g, x, k3, y, gx, gk, gy, C, H, W, HY, WY, scale_h, scale_w,
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
    def _pool_forward_kernel(x, out, C, HS, WS, KH, KW, sxn, sxc, sxh, sxw, son, soc, soh, sow,
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
    def _pool_backward_kernel(g, out, C, H, W, HS, WS, KH, KW, pixels, sgn, sgc, sgh, sgw, son, soc, soh, sow,
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
        _gate_launch(_gate_forward_kernel, (x, k3, y, out, x.stride(), k3.stride(), y.stride(), out.stride()), x, y)
    return out


def calibrate_backward_triton(grad: Tensor, x: Tensor, k3: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(grad_x, grad_k3, grad_y) by the Triton kernel, each in its input's layout."""
    gx, gk, gy = (empty_like_layout(tuple(t.shape), t, t.dtype) for t in (x, k3, y))
    if x.numel():
        args = (grad, x, k3, y, gx, gk, gy, grad.stride(), x.stride(), k3.stride(), y.stride(), gx.stride(),
                gk.stride(), gy.stride())  # fmt: skip
        _gate_launch(_gate_backward_kernel, args, x, y)
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
            _pool_forward_kernel[(n * hs * ws, triton.cdiv(c, block_c))](
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
            _pool_backward_kernel[(triton.cdiv(pixels, _BLOCK_P), triton.cdiv(c, block_c))](
                grad, out, c, height, width, hs, ws, kh, kw, pixels, *grad.stride(), *out.stride(),
                BLOCK_P=_BLOCK_P, BLOCK_C=block_c, num_warps=4)  # fmt: skip
    return out


def _served(*tensors: Tensor) -> bool:
    """Whether the kernels take these tensors: the first (the op's largest) channels_last, of a supported dtype and
    of ``MIN_ELEMENTS`` or more; all of its dtype; offsets inside a sample that fit int32 (the sample offset is
    int64)."""
    first = tensors[0]
    if first.dtype not in _SUPPORTED_DTYPES or not is_channels_last(first) or first.numel() < MIN_ELEMENTS:
        return False
    return all(t.dtype == first.dtype and sample_extent(t) <= INT32_MAX for t in tensors)


def _calibrate_cuda(x: Tensor, k3: Tensor, y: Tensor) -> Tensor:
    if not _served(x, k3, y) or _widest_block(x.shape[-1], y.shape[-1]) > _MAX_BLOCK_W:
        return calibrate_reference(x, k3, y)
    return calibrate_triton(x, k3, y)


def _calibrate_backward_cuda(grad: Tensor, x: Tensor, k3: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if not _served(x, k3, y, grad) or _widest_block(x.shape[-1], y.shape[-1]) > _MAX_BLOCK_W:
        return calibrate_backward_reference(grad, x, k3, y)
    return calibrate_backward_triton(grad, x, k3, y)


def _pool_cuda(x: Tensor, kh: int, kw: int) -> Tensor:
    if not _served(x) or kw > _MAX_BLOCK_W:
        return calibration_pool_reference(x, kh, kw)
    return calibration_pool_triton(x, kh, kw)


def _pool_backward_cuda(grad: Tensor, x: Tensor, kh: int, kw: int) -> Tensor:
    if not _served(x, grad):
        return calibration_pool_backward_reference(grad, x, kh, kw)
    return calibration_pool_backward_triton(grad, x, kh, kw)


if AVAILABLE:
    torch.library.register_kernel("adaptconv::calibrate", "cuda", _calibrate_cuda)
    torch.library.register_kernel("adaptconv::calibrate_backward", "cuda", _calibrate_backward_cuda)
    torch.library.register_kernel("adaptconv::calibration_pool", "cuda", _pool_cuda)
    torch.library.register_kernel("adaptconv::calibration_pool_backward", "cuda", _pool_backward_cuda)
