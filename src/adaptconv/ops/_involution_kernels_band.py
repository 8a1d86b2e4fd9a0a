"""Tensor-core Triton kernels of the involution aggregation for half-precision channels-last tensors.

    y[n, c, h, w] = sum_{i, j} W[n, g*K*K + i*K + j, h, w] * x[n, c, h*s + i*d - p, w*s + j*d - p]

(Li et al., CVPR 2021, Eq. 4.) For one output row h, kernel row i and group g this is a matrix product with a
banded matrix: over a block of output columns m and the input columns k they reach,

    y[h, m, :] += B_i[m, k] @ x[h*s + i*d - p, k, :],   B_i[m, k] = W[g*K*K + i*K + j, h, m] where k = m*s + j*d - p,

and B_i is zero off the band. So a program loads the block's input row once per kernel row as one rectangular
(columns, channels) tile, builds B_i from the kernels (a (columns, KP) tile of each pixel's K values of row i spread
over the band by ``tl.gather``, or a masked load of the band tile: the GATHER_B flag of the configurations), and
lets `tl.dot` (tensor cores, float32 accumulation) do the K*K*C/G multiply-adds per pixel; the zeros of the band
cost tensor-core work, which is cheap, instead of the gathers through L1 that bound the other kernels. The
backward is two more products per kernel row: the kernel gradient is the band of gy @ x_i^T (gathered into a
(columns, KP) tile and stored as such, or stored through a band mask), and the input
gradient of an input row is the sum over the kernel rows that reach it of B_i^T @ gy (the band seen from the
input side). Each output element is written by exactly one program: no atomics, deterministic.

Only for float16 and bfloat16 (tensor-core operands; float32 would round to tf32). Any strides work; they are meant
for channels_last, where a tile row's channels are contiguous. Not the default family: on an H100 they were slower
than the pixel-block kernels at most of RedNet-50's layers (docs/involution_kernel.md), so ``involution_triton``
runs them only when asked (``family="band"``). Offsets inside one sample are int32 unless WIDE.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._involution_kernels import _KEY, INTERPRETED, _channel_mask, _int64, tuning_configs


def output_step(block_m: int, block_k: int, kernel_size: int, stride: int, dilation: int) -> int:
    """Output columns a forward (or kernel-gradient) program owns: as many of its BLOCK_M rows as the BLOCK_K input
    columns of its tile reach in full."""
    return min(block_m, (block_k - 1 - (kernel_size - 1) * dilation) // stride + 1)


def input_step(block_m: int, block_k: int, kernel_size: int, stride: int, dilation: int) -> int:
    """Input columns an input-gradient program owns: as many of its BLOCK_M rows as the BLOCK_K output columns of its
    tile cover every tap of (the first of those is rounded down, hence the -2)."""
    return min(block_m, (block_k - 2) * stride - (kernel_size - 1) * dilation + 1)


# The column step of each kernel's programs, derived from its configuration and window (triton.heuristics).
_OUTPUT_STEP = {"M_STEP": lambda a: output_step(a["BLOCK_M"], a["BLOCK_K"], a["K"], a["STRIDE"], a["DIL"])}
_INPUT_STEP = {"Q_STEP": lambda a: input_step(a["BLOCK_M"], a["BLOCK_K"], a["K"], a["STRIDE"], a["DIL"])}


def usable(config: triton.Config, kernel_size: int, stride: int, dilation: int) -> bool:
    """Whether a configuration's tile holds at least one full band on both sides (wide windows need wide tiles)."""
    kw = config.kwargs
    return min(output_step(kw["BLOCK_M"], kw["BLOCK_K"], kernel_size, stride, dilation),
               input_step(kw["BLOCK_M"], kw["BLOCK_K"], kernel_size, stride, dilation)) >= 1  # fmt: skip


def _prune(configs, named_args, **kwargs):
    return [c for c in configs if usable(c, kwargs["K"], kwargs["STRIDE"], kwargs["DIL"])]


def _config(block_m: int, block_k: int, warps: int, gather: bool = True) -> triton.Config:
    return triton.Config({"BLOCK_M": block_m, "BLOCK_K": block_k, "GATHER_B": gather}, num_warps=warps)


# (BLOCK_M output columns, BLOCK_K input columns, warps), each with the band matrix built by GATHER_B (a row of K
# kernel values a pixel loaded as one tile, spread over the band by tl.gather) or by a masked load of the whole
# band tile; neither wins at every shape. The first is the one ADAPTCONV_AUTOTUNE=0 runs: it fits every RedNet
# window (K 3 or 7, stride 1 or 2) and rows up to 32 columns in one program.
GPU_CONFIGS = [
    _config(*t, gather)
    for t in [(32, 64, 4), (64, 64, 4), (64, 128, 4), (16, 32, 4), (16, 16, 4), (64, 128, 8), (32, 64, 2)]
    for gather in (True, False)
]
CONFIGS = tuning_configs(GPU_CONFIGS, _config(32, 64, 4))
_PRUNE = {"early_config_prune": _prune}
#: the kernels an aggregation and its backward launch, in order
KERNELS = ("forward_kernel", "weight_grad_kernel", "input_grad_kernel")


# Triton's interpreter multiplies bfloat16 operands of tl.dot as raw bits: there, products are taken in float32.
_EXACT_DOT = tl.constexpr(INTERPRETED)


@triton.jit
def _dot(a, b, acc):
    """acc + a @ b with float32 accumulation (tensor cores on a GPU)."""
    if _EXACT_DOT:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    return tl.dot(a, b, acc)


@triton.jit
def _row_program(pid, groups, rows, cols, STEP: tl.constexpr):
    """(sample as int64, group, row, first column) of program ``pid`` of a grid over (sample, group, row, block)."""
    blocks = tl.cdiv(cols, STEP)
    col0 = (pid % blocks) * STEP
    rest = pid // blocks
    row = rest % rows
    ng = rest // rows
    return (ng // groups).to(tl.int64), ng % groups, row, col0


@triton.jit
def _band(m, k, K: tl.constexpr, STRIDE: tl.constexpr, DIL: tl.constexpr, PAD: tl.constexpr):
    """For output columns m (rows of the tile) and input columns k (absolute), the tap column j linking them and
    whether it is a tap at all."""
    num = k[None, :] + PAD - m[:, None] * STRIDE  # = j * d on the band
    j = num // DIL
    return j, (num >= 0) & (num <= (K - 1) * DIL) & (num % DIL == 0)


@triton.jit
def _output_tile(m0, width, width_out, K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, M_STEP: tl.constexpr):  # fmt: skip
    """The tile of a forward or kernel-gradient program from output column m0: its row index mi, output columns m
    (valid where m_ok), the input columns k they reach (valid where k_ok), and the band between them (tap column j,
    on_band, restricted to valid m)."""
    mi = tl.arange(0, BLOCK_M)
    m = m0 + mi
    m_ok = (mi < M_STEP) & (m < width_out)
    k = m0 * STRIDE - PAD + tl.arange(0, BLOCK_K)
    k_ok = (k >= 0) & (k < width)
    j, on_band = _band(m, k, K, STRIDE, DIL, PAD)
    return mi, m, m_ok, k, k_ok, j, on_band & m_ok[:, None]


@triton.autotune(configs=CONFIGS, key=[*_KEY, "sx_c", "sw_c", "sy_c"], prune_configs_by=_PRUNE)
@triton.heuristics(_OUTPUT_STEP)
@triton.jit
def forward_kernel(
    x_ptr, w_ptr, y_ptr,
    group_channels, groups, height, width, height_out, width_out,
    sx_n, sx_c, sx_h, sx_w,
    sw_n, sw_c, sw_h, sw_w,
    sy_n, sy_c, sy_h, sy_w,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, M_STEP: tl.constexpr,
    EVEN_C: tl.constexpr, WIDE: tl.constexpr, KP: tl.constexpr, GATHER_B: tl.constexpr,
):  # fmt: skip
    """y (N, C, H_out, W_out) from x (N, C, H, W) and the kernels w (N, G*K*K, H_out, W_out): one program per
    (sample, group, output row, block of M_STEP output columns)."""
    if WIDE:
        sx_c, sx_h, sx_w = _int64(sx_c), _int64(sx_h), _int64(sx_w)
        sw_c, sw_h, sw_w = _int64(sw_c), _int64(sw_h), _int64(sw_w)
        sy_c, sy_h, sy_w = _int64(sy_c), _int64(sy_h), _int64(sy_w)
    n, g, ho, m0 = _row_program(tl.program_id(0), groups, height_out, width_out, M_STEP)
    mi, m, m_ok, k, k_ok, j, b_mask = _output_tile(m0, width, width_out, K, STRIDE, PAD, DIL, BLOCK_M, BLOCK_K, M_STEP)
    c0 = (g * group_channels).to(tl.int64)
    x_base = x_ptr + n * sx_n + c0 * sx_c
    y_base = y_ptr + n * sy_n + c0 * sy_c
    w_base = w_ptr + n * sw_n + (g * K * K).to(tl.int64) * sw_c + ho * sw_h
    b_ptrs = w_base + m[:, None] * sw_w + j * sw_c  # tap (i, j): add i * K * sw_c
    jj = tl.arange(0, KP)
    row_ptrs = w_base + m[:, None] * sw_w + jj[None, :] * sw_c
    row_mask = m_ok[:, None] & (jj < K)[None, :]
    j_idx = tl.minimum(tl.maximum(j, 0), KP - 1)
    for cb in range(0, group_channels, BLOCK_C):
        c = cb + tl.arange(0, BLOCK_C)
        c_ok = _channel_mask(c, group_channels, EVEN_C)
        acc = tl.zeros((BLOCK_M, BLOCK_C), dtype=tl.float32)
        for i in range(K):
            hi = ho * STRIDE - PAD + i * DIL
            if (hi >= 0) & (hi < height):
                xs = tl.load(x_base + hi * sx_h + k[:, None] * sx_w + c[None, :] * sx_c,
                             mask=k_ok[:, None] & c_ok[None, :], other=0.0)  # fmt: skip
                if GATHER_B:
                    wrow = tl.load(row_ptrs + i * K * sw_c, mask=row_mask, other=0.0)
                    b = tl.where(b_mask, tl.gather(wrow, j_idx, axis=1), 0.0)
                else:
                    b = tl.load(b_ptrs + i * K * sw_c, mask=b_mask, other=0.0)
                acc = _dot(b, xs, acc)
        y_ptrs = y_base + ho * sy_h + m[:, None] * sy_w + c[None, :] * sy_c
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=m_ok[:, None] & c_ok[None, :])


@triton.autotune(configs=CONFIGS, key=[*_KEY, "sgy_c", "sx_c", "sgw_c"], prune_configs_by=_PRUNE)
@triton.heuristics(_OUTPUT_STEP)
@triton.jit
def weight_grad_kernel(
    gy_ptr, x_ptr, gw_ptr,
    group_channels, groups, height, width, height_out, width_out,
    sgy_n, sgy_c, sgy_h, sgy_w,
    sx_n, sx_c, sx_h, sx_w,
    sgw_n, sgw_c, sgw_h, sgw_w,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, M_STEP: tl.constexpr,
    EVEN_C: tl.constexpr, WIDE: tl.constexpr, KP: tl.constexpr, GATHER_B: tl.constexpr,
):  # fmt: skip
    """gw (N, G*K*K, H_out, W_out): gw[i*K + j, h, m] = sum_c gy[c, h, m] * x[c, h*s + i*d - p, m*s + j*d - p], the
    band of the product gy_row @ x_row^T per kernel row; programs as in the forward."""
    if WIDE:
        sgy_c, sgy_h, sgy_w = _int64(sgy_c), _int64(sgy_h), _int64(sgy_w)
        sx_c, sx_h, sx_w = _int64(sx_c), _int64(sx_h), _int64(sx_w)
        sgw_c, sgw_h, sgw_w = _int64(sgw_c), _int64(sgw_h), _int64(sgw_w)
    n, g, ho, m0 = _row_program(tl.program_id(0), groups, height_out, width_out, M_STEP)
    mi, m, m_ok, k, k_ok, j, store_mask = _output_tile(m0, width, width_out, K, STRIDE, PAD, DIL, BLOCK_M, BLOCK_K,
                                                        M_STEP)  # fmt: skip
    c0 = (g * group_channels).to(tl.int64)
    gy_base = gy_ptr + n * sgy_n + c0 * sgy_c + ho * sgy_h
    x_base = x_ptr + n * sx_n + c0 * sx_c
    gw_pix = gw_ptr + n * sgw_n + (g * K * K).to(tl.int64) * sgw_c + ho * sgw_h + m[:, None] * sgw_w
    gw_ptrs = gw_pix + j * sgw_c
    jj = tl.arange(0, KP)
    row_ptrs = gw_pix + jj * sgw_c
    row_mask = m_ok[:, None] & (jj < K)[None, :]
    k_idx = tl.minimum(mi[:, None] * STRIDE + jj[None, :] * DIL, BLOCK_K - 1)  # the band's column of tap jj
    for i in range(K):
        hi = ho * STRIDE - PAD + i * DIL
        row_ok = (hi >= 0) & (hi < height)
        part = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float32)
        for cb in range(0, group_channels, BLOCK_C):
            c = cb + tl.arange(0, BLOCK_C)
            c_ok = _channel_mask(c, group_channels, EVEN_C)
            gy = tl.load(gy_base + m[:, None] * sgy_w + c[None, :] * sgy_c, mask=m_ok[:, None] & c_ok[None, :],
                         other=0.0)  # fmt: skip
            xs = tl.load(x_base + hi * sx_h + k[None, :] * sx_w + c[:, None] * sx_c,
                         mask=row_ok & k_ok[None, :] & c_ok[:, None], other=0.0)  # fmt: skip
            part = _dot(gy, xs, part)
        if GATHER_B:
            band = tl.gather(part, k_idx, axis=1)
            tl.store(row_ptrs + i * K * sgw_c, band.to(gw_ptr.dtype.element_ty), mask=row_mask)
        else:
            tl.store(gw_ptrs + i * K * sgw_c, part.to(gw_ptr.dtype.element_ty), mask=store_mask)


@triton.autotune(configs=CONFIGS, key=[*_KEY, "sgy_c", "sw_c", "sgx_c"], prune_configs_by=_PRUNE)
@triton.heuristics(_INPUT_STEP)
@triton.jit
def input_grad_kernel(
    gy_ptr, w_ptr, gx_ptr,
    group_channels, groups, height, width, height_out, width_out,
    sgy_n, sgy_c, sgy_h, sgy_w,
    sw_n, sw_c, sw_h, sw_w,
    sgx_n, sgx_c, sgx_h, sgx_w,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, DIL: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, Q_STEP: tl.constexpr,
    EVEN_C: tl.constexpr, WIDE: tl.constexpr, KP: tl.constexpr, GATHER_B: tl.constexpr,
):  # fmt: skip
    """gx (N, C, H, W): one program per (sample, group, input row, block of Q_STEP input columns q), summing over
    the kernel rows i that reach the row from an output row (s divides row + p - i*d) the products
    B_i^T @ gy_row over the BLOCK_K output columns from the first that reaches the block."""
    if WIDE:
        sgy_c, sgy_h, sgy_w = _int64(sgy_c), _int64(sgy_h), _int64(sgy_w)
        sw_c, sw_h, sw_w = _int64(sw_c), _int64(sw_h), _int64(sw_w)
        sgx_c, sgx_h, sgx_w = _int64(sgx_c), _int64(sgx_h), _int64(sgx_w)
    n, g, hi, q0 = _row_program(tl.program_id(0), groups, height, width, Q_STEP)
    qi = tl.arange(0, BLOCK_M)
    q = q0 + qi
    q_ok = (qi < Q_STEP) & (q < width)
    # The first output column whose window reaches q0 (floor division of a numerator shifted to stay >= 0).
    o0 = (q0 + PAD - (K - 1) * DIL + STRIDE * K * DIL) // STRIDE - K * DIL
    o = o0 + tl.arange(0, BLOCK_K)
    o_ok = (o >= 0) & (o < width_out)
    j, on_band = _band(o, q, K, STRIDE, DIL, PAD)  # (BLOCK_K outputs, BLOCK_M inputs)
    bt_mask = on_band & o_ok[:, None]
    c0 = (g * group_channels).to(tl.int64)
    gy_base = gy_ptr + n * sgy_n + c0 * sgy_c
    gx_base = gx_ptr + n * sgx_n + c0 * sgx_c + hi * sgx_h
    w_base = w_ptr + n * sw_n + (g * K * K).to(tl.int64) * sw_c
    bt_ptrs = w_base + o[:, None] * sw_w + j * sw_c  # tap (i, j) of output row r: add i * K * sw_c + r * sw_h
    jj = tl.arange(0, KP)
    row_ptrs = w_base + o[:, None] * sw_w + jj[None, :] * sw_c
    row_mask = o_ok[:, None] & (jj < K)[None, :]
    j_idx = tl.minimum(tl.maximum(j, 0), KP - 1)
    for cb in range(0, group_channels, BLOCK_C):
        c = cb + tl.arange(0, BLOCK_C)
        c_ok = _channel_mask(c, group_channels, EVEN_C)
        acc = tl.zeros((BLOCK_M, BLOCK_C), dtype=tl.float32)
        for i in range(K):
            num = hi + PAD - i * DIL + STRIDE * K * DIL
            ho = num // STRIDE - K * DIL
            if (num % STRIDE == 0) & (ho >= 0) & (ho < height_out):
                gy = tl.load(gy_base + ho * sgy_h + o[:, None] * sgy_w + c[None, :] * sgy_c,
                             mask=o_ok[:, None] & c_ok[None, :], other=0.0)  # fmt: skip
                if GATHER_B:
                    wrow = tl.load(row_ptrs + (i * K * sw_c + ho * sw_h), mask=row_mask, other=0.0)
                    bt = tl.where(bt_mask, tl.gather(wrow, j_idx, axis=1), 0.0)
                else:
                    bt = tl.load(bt_ptrs + (i * K * sw_c + ho * sw_h), mask=bt_mask, other=0.0)
                acc = _dot(tl.trans(bt), gy, acc)
        gx_ptrs = gx_base + q[:, None] * sgx_w + c[None, :] * sgx_c
        tl.store(gx_ptrs, acc.to(gx_ptr.dtype.element_ty), mask=q_ok[:, None] & c_ok[None, :])
