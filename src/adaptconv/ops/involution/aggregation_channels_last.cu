// The involution aggregation and its two gradients for channels_last tensors, in CUDA C++ (compiled by NVRTC).
//
//     y[n, h, w, c] = sum_{i, j} W[n, h, w, g(c)*K*K + i*K + j] * x[n, h*S + i*D - pad, w*S + j*D - pad, c]
//
// (Li et al., CVPR 2021, Eq. 4; out-of-range taps read zero; g(c) = c / GC.) Every tensor is dense channels_last:
// x, y, grad_x (N, H, W, C) and the kernels W, grad_W (N, Ho, Wo, G*K*K) in memory.
//
// Compile-time constants (-D): DTYPE (vector_io.cuh), K (odd), S (stride, 1 or 2), D (dilation), P (pixels a thread
// owns along a row), MAX_THREADS and MIN_BLOCKS (blocks of MAX_THREADS a multiprocessor must hold: it caps the
// registers a thread at 65536 / (MAX_THREADS * MIN_BLOCKS)). Everything else is a run-time field of Geometry.
//
// Built for occupancy (many warps a multiprocessor hide the latency of memory; there is no software pipeline): a
// block owns one sample, a slice of CB channels (whole groups), RT rows and a tile of PXT*P columns of the map it
// writes, one tile a block. A thread owns VW channels (one 16-byte vector) of P consecutive pixels of one row. The
// tensors read along the channels (x, grad_y) are read by the threads that use them, as 16-byte vectors through the
// read-only path (L1, then L2), each vector once for every tap of the thread's P pixels that reads it (sliding along
// the row in registers); neighbouring threads' reads of the same vectors hit L1. The kernels W, whose runs of K*K
// (or K) elements start at any element, are staged in shared memory by 16-byte asynchronous copies of the aligned
// chunks that cover them; grad_W is assembled in shared memory and written as 16-byte vectors. Accumulation is in
// float32. No atomics: every output element is written by one thread, in a fixed order.
#include "vector_io.cuh"

#if !defined(K) || !defined(S) || !defined(D) || !defined(P) || !defined(MAX_THREADS) || !defined(MIN_BLOCKS)
#error "define K, S, D, P, MAX_THREADS and MIN_BLOCKS"
#endif
static_assert(S == 1 || S == 2, "the input gradient's gather is written for strides 1 and 2");
static_assert(K % 2 == 1, "odd windows only");

constexpr int KK = K * K;
constexpr int SPAN = (K - 1) * D + 1;            // input columns one window spans
constexpr int THREAD_COLS = (P - 1) * S + SPAN;  // input columns a thread's P outputs read
// Elements of the shared-memory slot of one staged kernel row (K elements starting at any of VW alignments).
constexpr int SLOT = (VW - 1 + K + VW - 1) / VW * VW;
constexpr int SLOT_CHUNKS = SLOT / VW;
// Output columns a thread's P consecutive input pixels gather from (at most; the phase below says which).
constexpr int GATHER_COLS = ((S - 1) + (K - 1) * D + P - 1) / S + 1;

// The launch geometry, passed by value; the Python launcher builds the same struct (ctypes) field by field.
struct Geometry {
    int N, C, H, W, Ho, Wo, G, GC, pad;
    int CB;         // channels of a block (whole groups, a multiple of VW)
    int PXT;        // threads along the columns: a block has CB / VW * PXT * RT threads, a multiple of 32
    int RT;         // rows of a block (a thread a row)
    int col_tiles, slices, row_tiles;
    int wstride;    // forward and grad_W: elements of a pixel's slot in the shared-memory kernel tile
    int TWO;        // input gradient: output columns whose kernel rows a block stages
};

// A thread's place: its sample, the block's first channel, group, row and column, and its channel vector (cv), group
// within the block (gl), column thread (px) and row (rt).
struct Place {
    int n, c0, g0, row0, col0, cv, gl, px, rt;
};

__device__ __forceinline__ Place place(const Geometry& g) {
    int b = blockIdx.x;
    const int tile = b % g.col_tiles;
    b /= g.col_tiles;
    const int slice = b % g.slices, rtile = b / g.slices;
    const int CV = g.CB / VW;
    const int t = threadIdx.x;
    Place r;
    r.n = blockIdx.y;
    r.c0 = slice * g.CB;
    r.g0 = r.c0 / g.GC;
    r.row0 = rtile * g.RT;
    r.col0 = tile * g.PXT * P;
    r.cv = t % CV;
    r.px = (t / CV) % g.PXT;
    r.rt = t / (CV * g.PXT);
    r.gl = r.cv * VW / g.GC;
    return r;
}

// Element offset of pixel (n, ho, wo)'s kernel of group gr in W (N, Ho, Wo, G*K*K).
__device__ __forceinline__ long long kernel_offset(const Geometry& g, int n, int ho, int wo, int gr) {
    return ((static_cast<long long>(n) * g.Ho + ho) * g.Wo + wo) * (static_cast<long long>(g.G) * KK) +
           static_cast<long long>(gr) * KK;
}

// Bytes of the 16-byte chunk at element e of a tensor of `total` elements that lie inside it (0..16).
__device__ __forceinline__ int bytes_inside(long long e, long long total) {
    const long long left = (total - e) * static_cast<long long>(sizeof(elem_t));
    return left >= 16 ? 16 : (left > 0 ? static_cast<int>(left) : 0);
}

__device__ __forceinline__ long long kernel_elements(const Geometry& g) {
    return static_cast<long long>(g.N) * g.Ho * g.Wo * g.G * KK;
}

// The kernel tile of the forward and of grad_W in shared memory: a slot of wstride elements for each of the block's
// RT x PXT*P output pixels, holding the block's CBG*K*K kernel elements of that pixel at the same alignment as in
// global memory (from element kernel_offset mod VW), so that 16-byte chunks map onto 16-byte chunks. The block's
// threads take the (pixel, chunk) pairs in turn, consecutive threads consecutive chunks of a pixel.
__device__ void stage_kernel_tile(const elem_t* __restrict__ w, elem_t* tile, const Geometry& g, const Place& at) {
    const int TW = g.PXT * P, chunks = g.wstride / VW, items = g.RT * TW * chunks;
    const long long total = kernel_elements(g);
    for (int l = threadIdx.x; l < items; l += blockDim.x) {
        const int p = l / chunks, k = l - p * chunks;
        const int r = p / TW;
        const int ho = at.row0 + r, wo = at.col0 + p - r * TW;
        const bool ok = ho < g.Ho && wo < g.Wo;
        const long long e = (ok ? kernel_offset(g, at.n, ho, wo, at.g0) & ~static_cast<long long>(VW - 1) : 0) + k * VW;
        const int bytes = ok ? bytes_inside(e, total) : 0;
        copy_async16(tile + p * g.wstride + k * VW, bytes ? w + e : w, bytes);
    }
}

// Write the kernel tile (as stage_kernel_tile lays it out) to grad_W: whole 16-byte chunks as vectors, the chunks
// a pixel's run shares with its neighbours' (another block may write those) element by element; the (pixel, chunk)
// pairs taken in turn by the block's threads, as in stage_kernel_tile.
__device__ void write_kernel_tile(elem_t* __restrict__ gw, const elem_t* tile, const Geometry& g, const Place& at) {
    const int TW = g.PXT * P, chunks = g.wstride / VW, items = g.RT * TW * chunks;
    const long long run = static_cast<long long>(g.CB / g.GC) * KK;
    for (int l = threadIdx.x; l < items; l += blockDim.x) {
        const int p = l / chunks, k = l - p * chunks;
        const int r = p / TW;
        const int ho = at.row0 + r, wo = at.col0 + p - r * TW;
        if (ho >= g.Ho || wo >= g.Wo) continue;
        const long long e0 = kernel_offset(g, at.n, ho, wo, at.g0);
        const long long e = (e0 & ~static_cast<long long>(VW - 1)) + k * VW;
        const elem_t* src = tile + p * g.wstride + k * VW;
        if (e >= e0 && e + VW <= e0 + run) {
            copy16(gw + e, src);
        } else {
#pragma unroll
            for (int v = 0; v < VW; ++v)
                if (e + v >= e0 && e + v < e0 + run) gw[e + v] = src[v];
        }
    }
}

static_assert(THREAD_COLS <= 32, "a thread's input columns fit in one 32-bit mask");

// Bit cc set where input column first + cc (cc < THREAD_COLS) lies in [0, W).
__device__ __forceinline__ unsigned columns_inside(int first, int W) {
    unsigned mask = 0u;
#pragma unroll
    for (int cc = 0; cc < THREAD_COLS; ++cc)
        if (first + cc >= 0 && first + cc < W) mask |= 1u << cc;
    return mask;
}

// Offsets in the kernel tile of the thread's P pixels' kernels of its group (tap (i, j) at + i*K + j).
__device__ __forceinline__ void tile_offsets(const Geometry& g, const Place& at, int (&ofs)[P]) {
    const int TW = g.PXT * P;
    const int ho = at.row0 + at.rt, wf = at.col0 + at.px * P;
    const long long first = kernel_offset(g, at.n, ho, wf, at.g0);
    const long long per_pixel = static_cast<long long>(g.G) * KK;
#pragma unroll
    for (int q = 0; q < P; ++q)
        ofs[q] = (at.rt * TW + at.px * P + q) * g.wstride + static_cast<int>((first + q * per_pixel) & (VW - 1)) +
                 at.gl * KK;
}

extern "C" __global__ void __launch_bounds__(MAX_THREADS, MIN_BLOCKS)
    aggregate_forward(const elem_t* __restrict__ x, const elem_t* __restrict__ w, elem_t* __restrict__ y,
                      const Geometry g) {
    extern __shared__ __align__(16) unsigned char smem[];
    elem_t* tile = reinterpret_cast<elem_t*>(smem);
    const Place at = place(g);
    stage_kernel_tile(w, tile, g, at);
    copy_async_commit();

    const int ho = at.row0 + at.rt, wf = at.col0 + at.px * P;
    int ofs[P];
    tile_offsets(g, at, ofs);
    const elem_t* xc = x + static_cast<long long>(at.n) * g.H * g.W * g.C + at.c0 + at.cv * VW;
    float acc[P][VW];
#pragma unroll
    for (int q = 0; q < P; ++q)
#pragma unroll
        for (int v = 0; v < VW; ++v) acc[q][v] = 0.f;
    copy_async_wait<0>();
    __syncthreads();

#pragma unroll 1
    for (int i = 0; i < K; ++i) {
        const int hin = ho * S + i * D - g.pad;
        // the columns of the row the thread reads that exist, one bit each (one register, not THREAD_COLS predicates)
        const unsigned cols_ok = ho < g.Ho && hin >= 0 && hin < g.H ? columns_inside(wf * S - g.pad, g.W) : 0u;
        const elem_t* xrow = xc + (static_cast<long long>(hin) * g.W + wf * S - g.pad) * g.C;
#pragma unroll
        for (int cc = 0; cc < THREAD_COLS; ++cc) {
            float xv[VW];
            // Keeps the compiler from hoisting every column's loads to the top of the row, which takes more registers
            // than the launch bounds allow (every thread of a warp runs every column).
            __syncwarp();
            load_vec_global(xrow + cc * g.C, (cols_ok >> cc) & 1u, xv);
#pragma unroll
            for (int q = 0; q < P; ++q) {
                const int t = cc - q * S;  // = j * D for the tap j of pixel q that reads this column
                if (t >= 0 && t % D == 0 && t / D < K) {
                    const float kv = to_float(tile[ofs[q] + i * K + t / D]);
#pragma unroll
                    for (int v = 0; v < VW; ++v) acc[q][v] = fmaf(kv, xv[v], acc[q][v]);
                }
            }
        }
    }
    if (ho >= g.Ho) return;
    elem_t* yrow = y + (static_cast<long long>(at.n) * g.Ho + ho) * g.Wo * g.C + at.c0 + at.cv * VW;
#pragma unroll
    for (int q = 0; q < P; ++q)
        if (wf + q < g.Wo) store_vec(yrow + static_cast<long long>(wf + q) * g.C, acc[q]);
}

// grad_W[n, ho, wo, g, i*K + j] = sum_{c in g} grad_y[n, ho, wo, c] * x[n, ho*S + i*D - pad, wo*S + j*D - pad, c]:
// the forward's threads and x reads, grad_y's P vectors in registers; each thread sums its VW channels, the
// LANES = GC / VW threads of a group (adjacent lanes) add their sums by shuffles (a fixed butterfly) into the kernel
// tile in shared memory, which the block then writes out as 16-byte vectors. LANES > 0: a compile-time count, the
// butterfly unrolled over the whole warp; 0: the run-time count GC / VW and the group's mask, where the compiler puts
// a convergence barrier around each tap's shuffles (sm_90, K 7, bfloat16: 3224 instructions with 112 barriers
// against 1640 with none; `python -m benchmarks.kernel_sass`). The entry points are below.
template <int LANES>
__device__ __forceinline__ void backward_weight_rows(const elem_t* __restrict__ x, elem_t* tile, const Geometry& g,
                                                     const Place& at, const int (&ofs)[P], const float (&gyv)[P][VW]) {
    const int ho = at.row0 + at.rt, wf = at.col0 + at.px * P;
    const int lanes = LANES > 0 ? LANES : g.GC / VW;  // threads of a group: a power of two <= 32
    // Every thread of the warp runs every tap (the blocks are whole warps, and no thread leaves the loops early), so
    // the unrolled shuffles name the whole warp: with a group's mask the compiler wrapped each in a convergence
    // barrier. The run-time loop keeps the group's mask (its iterations differ between groups only in count: none).
    const unsigned lane = threadIdx.x & 31u;
    const unsigned mask = LANES > 0 || lanes == 32
                              ? 0xffffffffu
                              : ((1u << lanes) - 1u) << (lane & ~static_cast<unsigned>(lanes - 1));
    const elem_t* xc = x + static_cast<long long>(at.n) * g.H * g.W * g.C + at.c0 + at.cv * VW;
#pragma unroll 1
    for (int i = 0; i < K; ++i) {
        const int hin = ho * S + i * D - g.pad;
        const bool row_ok = ho < g.Ho && hin >= 0 && hin < g.H;  // the same for a group's threads
        const elem_t* xrow = xc + static_cast<long long>(hin) * g.W * g.C;
#pragma unroll
        for (int cc = 0; cc < THREAD_COLS; ++cc) {
            const int win = wf * S - g.pad + cc;
            float xv[VW];
            __syncwarp();  // as in the forward (every thread of a warp runs every column)
            load_vec_global(xrow + static_cast<long long>(win) * g.C, row_ok && win >= 0 && win < g.W, xv);
#pragma unroll
            for (int q = 0; q < P; ++q) {
                const int t = cc - q * S;  // = j * D for the tap j of pixel q that reads this column
                if (t >= 0 && t % D == 0 && t / D < K) {
                    const int j = t / D;
                    float sum = 0.f;
#pragma unroll
                    for (int v = 0; v < VW; ++v) sum = fmaf(xv[v], gyv[q][v], sum);
                    if constexpr (LANES > 0) {
#pragma unroll
                        for (int m = 1; m < LANES; m <<= 1) sum += __shfl_xor_sync(mask, sum, m);
                    } else {
                        for (int m = 1; m < lanes; m <<= 1) sum += __shfl_xor_sync(mask, sum, m);
                    }
                    // Every thread of the group holds the same sum (a butterfly of commutative additions) and writes
                    // it: the same value to one address, and no per-lane predicate to keep in registers.
                    tile[ofs[q] + i * K + j] = from_float(sum);
                }
            }
        }
    }
}

template <int LANES>
__device__ __forceinline__ void backward_weight(const elem_t* __restrict__ gy, const elem_t* __restrict__ x,
                                                elem_t* __restrict__ gw, const Geometry& g) {
    extern __shared__ __align__(16) unsigned char smem[];
    elem_t* tile = reinterpret_cast<elem_t*>(smem);
    const Place at = place(g);
    const int ho = at.row0 + at.rt, wf = at.col0 + at.px * P;
    int ofs[P];
    tile_offsets(g, at, ofs);

    float gyv[P][VW];
    const elem_t* gyrow = gy + (static_cast<long long>(at.n) * g.Ho + ho) * g.Wo * g.C + at.c0 + at.cv * VW;
#pragma unroll
    for (int q = 0; q < P; ++q)
        load_vec_global(gyrow + static_cast<long long>(wf + q) * g.C, ho < g.Ho && wf + q < g.Wo, gyv[q]);
    backward_weight_rows<LANES>(x, tile, g, at, ofs, gyv);
    __syncthreads();
    write_kernel_tile(gw, tile, g, at);
}

// Two entry points: aggregate_backward_weight_gc16 for groups of 16 channels (RedNet's; LANES = 16 / VW, the
// butterfly unrolled, at stride 1: at stride 2 a thread reads 19 columns a row, and unrolled it spilled registers in
// 16 bits) and aggregate_backward_weight_any, the run-time loop, for the others (unrolled, some of them spilled;
// one kernel switching between unrolled forms spilled too).
extern "C" __global__ void __launch_bounds__(MAX_THREADS, MIN_BLOCKS)
    aggregate_backward_weight_gc16(const elem_t* __restrict__ gy, const elem_t* __restrict__ x,
                                   elem_t* __restrict__ gw, const Geometry g) {
    backward_weight<S == 1 ? 16 / VW : 0>(gy, x, gw, g);
}

extern "C" __global__ void __launch_bounds__(MAX_THREADS, MIN_BLOCKS)
    aggregate_backward_weight_any(const elem_t* __restrict__ gy, const elem_t* __restrict__ x, elem_t* __restrict__ gw,
                                  const Geometry g) {
    backward_weight<0>(gy, x, gw, g);
}

// Kernel row i of the output pixels the block's input rows gather from, into buf: a slot of SLOT elements for each
// (row of the block, output column wo_start + oc, group of the block), holding the K elements at the same alignment
// as in global memory; zeros where the output pixel does not exist. The block's threads take the (pixel, group,
// chunk) triples in turn (a pixel's run is only SLOT_CHUNKS chunks a group: one warp a pixel would leave most lanes
// idle).
__device__ void stage_gather_row(const elem_t* __restrict__ w, elem_t* buf, const Geometry& g, const Place& at, int i,
                                 int wo_start) {
    const int CBG = g.CB / g.GC, pixel_chunks = CBG * SLOT_CHUNKS, items = g.RT * g.TWO * pixel_chunks;
    const long long total = kernel_elements(g);
    for (int l = threadIdx.x; l < items; l += blockDim.x) {
        const int p = l / pixel_chunks, rest = l - p * pixel_chunks;
        const int gl = rest / SLOT_CHUNKS, k = rest - gl * SLOT_CHUNKS;
        const int r = p / g.TWO;
        const int num = at.row0 + r + g.pad - i * D;
        const int ho = floor_div(num, S), wo = wo_start + p - r * g.TWO;
        const bool ok = floor_mod(num, S) == 0 && ho >= 0 && ho < g.Ho && wo >= 0 && wo < g.Wo;
        long long e = 0;
        int bytes = 0;
        if (ok) {
            e = ((kernel_offset(g, at.n, ho, wo, at.g0 + gl) + i * K) & ~static_cast<long long>(VW - 1)) + k * VW;
            bytes = bytes_inside(e, total);
        }
        copy_async16(buf + (p * CBG + gl) * SLOT + k * VW, bytes ? w + e : w, bytes);
    }
}

// Whether output column oc (of a thread whose first input column has phase R) reaches one of its P input pixels.
__host__ __device__ constexpr bool reaches(int R, int oc) {
    for (int q = 0; q < P; ++q) {
        const int t = R + (K - 1) * D + q - oc * S;
        if (t >= 0 && t % D == 0 && t / D < K) return true;
    }
    return false;
}

// The taps of one kernel row i into the P input pixels of a thread whose first input column has phase R (its
// window's start minus S times its first output column wo_lo): for each output column wo_lo + OC of the row that
// reaches them (OC = 0 .. GATHER_COLS - 1, unrolled at compile time), one grad_y vector and the staged kernel row's
// taps (slots: the slot of the thread's first output column).
template <int R, int OC>
__device__ __forceinline__ void gather_row(float (&acc)[P][VW], const elem_t* gyrow, const elem_t* slots,
                                           long long krow, long long per_pixel, int wo_lo, int Wo, int C, int CBG) {
    if constexpr (OC < GATHER_COLS) {
        if constexpr (reaches(R, OC)) {
            const int wo = wo_lo + OC;
            float gv[VW];
            __syncwarp(__activemask());  // as in the forward (the threads of one phase)
            load_vec_global(gyrow + static_cast<long long>(wo) * C, wo >= 0 && wo < Wo, gv);
            const elem_t* kr = slots + OC * CBG * SLOT + static_cast<int>((krow + OC * per_pixel) & (VW - 1));
#pragma unroll
            for (int q = 0; q < P; ++q) {
                const int t = R + (K - 1) * D + q - OC * S;  // = j * D for the tap j from wo to pixel q
                if (t >= 0 && t % D == 0 && t / D < K) {
                    const float kv = to_float(kr[t / D]);
#pragma unroll
                    for (int v = 0; v < VW; ++v) acc[q][v] = fmaf(kv, gv[v], acc[q][v]);
                }
            }
        }
        gather_row<R, OC + 1>(acc, gyrow, slots, krow, per_pixel, wo_lo, Wo, C, CBG);
    }
}

// grad_x[n, hi, wi, c] = sum over the taps (i, j) and output pixels (ho, wo) with ho*S + i*D - pad = hi and
// wo*S + j*D - pad = wi of W[n, ho, wo, g(c), i*K + j] * grad_y[n, ho, wo, c]: a gather, no atomics. A thread owns
// VW channels of P consecutive input pixels of one input row; for each kernel row i (staged for the block, the next
// one copied while this one is used) it reads the grad_y vectors of the output row that reaches its row, each once
// for every tap of its P pixels that it reaches.
extern "C" __global__ void __launch_bounds__(MAX_THREADS, MIN_BLOCKS)
    aggregate_backward_input(const elem_t* __restrict__ gy, const elem_t* __restrict__ w, elem_t* __restrict__ gx,
                             const Geometry g) {
    extern __shared__ __align__(16) unsigned char smem[];
    elem_t* stage = reinterpret_cast<elem_t*>(smem);
    const Place at = place(g);
    const int CBG = g.CB / g.GC;
    const int buf_elems = g.RT * g.TWO * CBG * SLOT;
    const int wo_start = floor_div(at.col0 + g.pad - (K - 1) * D, S);
    const int hi = at.row0 + at.rt, wf = at.col0 + at.px * P;
    const int nb = wf + g.pad - (K - 1) * D;
    const int wo_lo = floor_div(nb, S);  // the thread's first output column
    const int phase = nb - wo_lo * S;
    const int slot0 = ((at.rt * g.TWO + wo_lo - wo_start) * CBG + at.gl) * SLOT;
    const long long per_pixel = static_cast<long long>(g.G) * KK;
    const elem_t* gyc = gy + at.c0 + at.cv * VW;
    float acc[P][VW];
#pragma unroll
    for (int q = 0; q < P; ++q)
#pragma unroll
        for (int v = 0; v < VW; ++v) acc[q][v] = 0.f;

    stage_gather_row(w, stage, g, at, 0, wo_start);
    copy_async_commit();
#pragma unroll 1
    for (int i = 0; i < K; ++i) {
        copy_async_wait<0>();
        __syncthreads();  // row i is in place, and every thread is done with row i - 1's buffer
        if (i + 1 < K) {
            stage_gather_row(w, stage + ((i + 1) & 1) * buf_elems, g, at, i + 1, wo_start);
            copy_async_commit();
        }
        const int num = hi + g.pad - i * D;
        const int ho = floor_div(num, S);
        if (hi >= g.H || floor_mod(num, S) != 0 || ho < 0 || ho >= g.Ho) continue;
        const elem_t* slots = stage + (i & 1) * buf_elems + slot0;
        const long long krow = kernel_offset(g, at.n, ho, wo_lo, at.g0 + at.gl) + i * K;
        const elem_t* gyrow = gyc + (static_cast<long long>(at.n) * g.Ho + ho) * g.Wo * g.C;
        if (S == 1 || phase == 0)
            gather_row<0, 0>(acc, gyrow, slots, krow, per_pixel, wo_lo, g.Wo, g.C, CBG);
        else
            gather_row<S - 1, 0>(acc, gyrow, slots, krow, per_pixel, wo_lo, g.Wo, g.C, CBG);
    }
    if (hi >= g.H) return;
    elem_t* gxrow = gx + (static_cast<long long>(at.n) * g.H + hi) * g.W * g.C + at.c0 + at.cv * VW;
#pragma unroll
    for (int q = 0; q < P; ++q)
        if (wf + q < g.W) store_vec(gxrow + static_cast<long long>(wf + q) * g.C, acc[q]);
}
