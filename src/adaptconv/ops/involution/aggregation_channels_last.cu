// The involution aggregation and its two gradients for channels_last tensors, in CUDA C++ (compiled by NVRTC).
//
//     y[n, h, w, c] = sum_{i, j} W[n, h, w, g(c)*K*K + i*K + j] * x[n, h*S + i*D - pad, w*S + j*D - pad, c]
//
// (Li et al., CVPR 2021, Eq. 4; out-of-range taps read zero; g(c) = c / GC.) Every tensor is dense channels_last:
// x, y, grad_x (N, H, W, C) and the kernels W, grad_W (N, Ho, Wo, G*K*K) in memory.
//
// Compile-time constants (-D): DTYPE (vector_io.cuh), K (odd), S (stride), D (dilation), P (output pixels a thread
// owns along a row) and MAX_THREADS. Everything else is a run-time field of Geometry.
//
// A block owns one sample, a slice of CB channels (whole groups), a tile of columns and a strip of rows, and walks
// its strip one row at a time. The input rows a row of outputs needs are staged in shared memory, in a ring of row
// slots (row r in slot r mod RING), by 16-byte asynchronous copies that zero-fill the padding; the next row's data
// is copied while the current one is computed (double buffering), so each input element is read from memory once
// per block. A thread owns VW channels (one 16-byte vector) of P consecutive output pixels: a kernel value is
// loaded once for VW channels, and an input vector once for every tap of the P pixels that reads it (sliding along
// the row in registers). Accumulation is in float32. No atomics: every output element is written by one thread.
#include "vector_io.cuh"

#if !defined(K) || !defined(S) || !defined(D) || !defined(P) || !defined(MAX_THREADS)
#error "define K, S, D, P and MAX_THREADS"
#endif

constexpr int KK = K * K;
constexpr int SPAN = (K - 1) * D + 1;           // input rows (columns) one window spans
constexpr int THREAD_COLS = (P - 1) * S + SPAN;  // input columns a thread's P outputs read
constexpr int RING = SPAN + S;                   // input row slots: one window and the next row's new rows
constexpr int OUT_RING = (K - 1) * D / S + 2;   // output row slots of the input gradient: one window and the next

// The launch geometry, passed by value; the Python launcher builds the same struct (ctypes) field by field.
struct Geometry {
    int N, C, H, W, Ho, Wo, G, GC, pad;
    int CB;         // channels of a block (whole groups, a multiple of VW)
    int PXT;        // threads along the columns (a block has CB / VW * PXT threads)
    int RB;         // rows of a block's strip
    int col_tiles, slices;
    int wstride;    // forward: elements per pixel in the staged kernel row
    int TWO;        // input gradient: output columns staged per block
};

struct BlockCoords {
    int n, slice, tile, strip;
};

__device__ __forceinline__ BlockCoords block_coords(const Geometry& g) {
    int b = blockIdx.x;
    BlockCoords r;
    r.tile = b % g.col_tiles;
    b /= g.col_tiles;
    r.slice = b % g.slices;
    r.strip = b / g.slices;
    r.n = blockIdx.y;
    return r;
}

// Copy rows [r_lo, r_hi] x columns [col0, col0 + ncols) x channels [c0, c0 + CB) of a channels_last tensor
// (N, rows, cols, C) into the ring slots (row r at slot r mod slots), as zeros outside the tensor.
__device__ void stage_rows(const elem_t* __restrict__ src, elem_t* ring, int n, int r_lo, int r_hi, int rows,
                           int cols, int C, int col0, int ncols, int c0, int CB, int slots) {
    const int vecs = CB / VW;
    const int per_row = ncols * vecs;
    const int total = (r_hi - r_lo + 1) * per_row;
    for (int idx = threadIdx.x; idx < total; idx += blockDim.x) {
        const int r = r_lo + idx / per_row;
        const int rem = idx % per_row;
        const int col = rem / vecs, v = rem % vecs;
        const int gc = col0 + col;
        const bool ok = r >= 0 && r < rows && gc >= 0 && gc < cols;
        const elem_t* p = ok ? src + ((static_cast<long long>(n) * rows + r) * cols + gc) * C + c0 + v * VW : src;
        copy_async16(ring + (static_cast<long long>(floor_mod(r, slots)) * ncols + col) * CB + v * VW, p, ok ? 16 : 0);
    }
}

// Element offset of pixel (n, ho, wo)'s kernel of group g0 in W (N, Ho, Wo, G*K*K).
__device__ __forceinline__ long long kernel_offset(const Geometry& g, int n, int ho, int wo, int g0) {
    return ((static_cast<long long>(n) * g.Ho + ho) * g.Wo + wo) * (static_cast<long long>(g.G) * KK) +
           static_cast<long long>(g0) * KK;
}

// The forward's kernels of output row ho, pixels [w0, w0 + TW), the block's groups: per pixel a run of CBG*K*K
// elements starting anywhere, copied as the 16-byte chunks that cover it (wstride elements a pixel; the run
// starts at kernel_offset mod VW within them).
__device__ void stage_kernels(const elem_t* __restrict__ w, elem_t* buf, const Geometry& g, int n, int ho, int w0,
                              int TW, int g0) {
    const int chunks = g.wstride / VW;
    const long long total = static_cast<long long>(g.N) * g.Ho * g.Wo * g.G * KK;
    for (int idx = threadIdx.x; idx < TW * chunks; idx += blockDim.x) {
        const int p = idx / chunks, k = idx % chunks;
        const int wo = w0 + p;
        const long long e = (kernel_offset(g, n, ho, wo, g0) & ~static_cast<long long>(VW - 1)) + k * VW;
        int bytes = 0;
        if (wo < g.Wo) {
            const long long left = (total - e) * static_cast<long long>(sizeof(elem_t));
            bytes = left >= 16 ? 16 : (left > 0 ? static_cast<int>(left) : 0);
        }
        copy_async16(buf + p * g.wstride + k * VW, bytes ? w + e : w, bytes);
    }
}

// The software pipeline every kernel runs over its strip: stage(first step), then for each step, stage the next
// (into the other buffer) while computing this one.
template <typename Stage, typename Compute>
__device__ __forceinline__ void pipeline(int first, int end, Stage stage, Compute compute) {
    stage(first, 0, true);
    copy_async_commit();
    for (int step = first; step < end; ++step) {
        const int buf = (step - first) & 1;
        if (step + 1 < end) {
            stage(step + 1, buf ^ 1, false);
            copy_async_commit();
            copy_async_wait<1>();
        } else {
            copy_async_wait<0>();
        }
        __syncthreads();
        compute(step, buf);
        __syncthreads();  // the buffers of this step are overwritten by the stage two steps on
    }
}

// The rows of the input that output row ho reads and the previous output row did not: all of its window at the
// strip's first row.
__device__ __forceinline__ void new_input_rows(int ho, int pad, bool first, int& lo, int& hi) {
    const int top = ho * S - pad;
    lo = first ? top : max(top, top - S + SPAN);
    hi = top + SPAN - 1;
}

extern "C" __global__ void __launch_bounds__(MAX_THREADS, 1)
    aggregate_forward(const elem_t* __restrict__ x, const elem_t* __restrict__ w, elem_t* __restrict__ y,
                      const Geometry g) {
    extern __shared__ __align__(16) unsigned char smem[];
    const BlockCoords blk = block_coords(g);
    const int CB = g.CB, CBG = CB / g.GC, TW = g.PXT * P;
    const int XC = (TW - 1) * S + SPAN;
    elem_t* xs = reinterpret_cast<elem_t*>(smem);
    elem_t* ws = xs + RING * XC * CB;
    const int c0 = blk.slice * CB, g0 = c0 / g.GC, w0 = blk.tile * TW, n = blk.n;
    const int ct = threadIdx.x % (CB / VW), px = threadIdx.x / (CB / VW);
    const int gl = ct * VW / g.GC;
    const int ho0 = blk.strip * g.RB, ho_end = min(ho0 + g.RB, g.Ho);
    (void)CBG;

    auto stage = [&](int ho, int buf, bool first) {
        int lo, hi;
        new_input_rows(ho, g.pad, first, lo, hi);
        stage_rows(x, xs, n, lo, hi, g.H, g.W, g.C, w0 * S - g.pad, XC, c0, CB, RING);
        stage_kernels(w, ws + buf * TW * g.wstride, g, n, ho, w0, TW, g0);
    };
    auto compute = [&](int ho, int buf) {
        const elem_t* wb = ws + buf * TW * g.wstride;
        int wofs[P];
#pragma unroll
        for (int q = 0; q < P; ++q) {
            const int p = px * P + q;
            wofs[q] = p * g.wstride + static_cast<int>(kernel_offset(g, n, ho, w0 + p, g0) & (VW - 1)) + gl * KK;
        }
        float acc[P][VW];
#pragma unroll
        for (int q = 0; q < P; ++q)
#pragma unroll
            for (int v = 0; v < VW; ++v) acc[q][v] = 0.f;
#pragma unroll 1
        for (int i = 0; i < K; ++i) {
            const elem_t* xrow = xs + (floor_mod(ho * S - g.pad + i * D, RING) * XC + px * P * S) * CB + ct * VW;
            float kv[P][K];
#pragma unroll
            for (int q = 0; q < P; ++q)
#pragma unroll
                for (int j = 0; j < K; ++j) kv[q][j] = to_float(wb[wofs[q] + i * K + j]);
#pragma unroll
            for (int cc = 0; cc < THREAD_COLS; ++cc) {
                float xv[VW];
                load_vec(xrow + cc * CB, xv);
#pragma unroll
                for (int q = 0; q < P; ++q) {
                    const int t = cc - q * S;  // = j * D for the tap j of pixel q that reads this column
                    if (t >= 0 && t % D == 0 && t / D < K) {
#pragma unroll
                        for (int v = 0; v < VW; ++v) acc[q][v] = fmaf(kv[q][t / D], xv[v], acc[q][v]);
                    }
                }
            }
        }
#pragma unroll
        for (int q = 0; q < P; ++q) {
            const int wo = w0 + px * P + q;
            if (wo < g.Wo)
                store_vec(y + ((static_cast<long long>(n) * g.Ho + ho) * g.Wo + wo) * g.C + c0 + ct * VW, acc[q]);
        }
    };
    pipeline(ho0, ho_end, stage, compute);
}

// grad_W[n, ho, wo, g, i*K + j] = sum_{c in g} grad_y[n, ho, wo, c] * x[n, ho*S + i*D - pad, wo*S + j*D - pad, c]:
// the forward's blocks and staging (grad_y's row in place of the kernels); each thread sums its VW channels, then
// the GC / VW threads of a group (adjacent lanes) add their sums by shuffles, in a fixed order.
extern "C" __global__ void __launch_bounds__(MAX_THREADS, 1)
    aggregate_backward_weight(const elem_t* __restrict__ gy, const elem_t* __restrict__ x, elem_t* __restrict__ gw,
                              const Geometry g) {
    extern __shared__ __align__(16) unsigned char smem[];
    const BlockCoords blk = block_coords(g);
    const int CB = g.CB, TW = g.PXT * P;
    const int XC = (TW - 1) * S + SPAN;
    elem_t* xs = reinterpret_cast<elem_t*>(smem);
    elem_t* gys = xs + RING * XC * CB;
    const int c0 = blk.slice * CB, g0 = c0 / g.GC, w0 = blk.tile * TW, n = blk.n;
    const int ct = threadIdx.x % (CB / VW), px = threadIdx.x / (CB / VW);
    const int gl = ct * VW / g.GC;
    const int lanes = g.GC / VW;  // threads of a group: a power of two <= 32
    const int lane_in_group = ct % lanes;
    const unsigned lane = threadIdx.x & 31u;
    const unsigned group_mask =
        lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u) << (lane & ~static_cast<unsigned>(lanes - 1));
    const int ho0 = blk.strip * g.RB, ho_end = min(ho0 + g.RB, g.Ho);

    auto stage = [&](int ho, int buf, bool first) {
        int lo, hi;
        new_input_rows(ho, g.pad, first, lo, hi);
        stage_rows(x, xs, n, lo, hi, g.H, g.W, g.C, w0 * S - g.pad, XC, c0, CB, RING);
        stage_rows(gy, gys + buf * TW * CB, n, ho, ho, g.Ho, g.Wo, g.C, w0, TW, c0, CB, 1);
    };
    auto compute = [&](int ho, int buf) {
        float gyv[P][VW];
#pragma unroll
        for (int q = 0; q < P; ++q) load_vec(gys + (buf * TW + px * P + q) * CB + ct * VW, gyv[q]);
#pragma unroll 1
        for (int i = 0; i < K; ++i) {
            const elem_t* xrow = xs + (floor_mod(ho * S - g.pad + i * D, RING) * XC + px * P * S) * CB + ct * VW;
            float part[P][K];
#pragma unroll
            for (int cc = 0; cc < THREAD_COLS; ++cc) {
                float xv[VW];
                load_vec(xrow + cc * CB, xv);
#pragma unroll
                for (int q = 0; q < P; ++q) {
                    const int t = cc - q * S;
                    if (t >= 0 && t % D == 0 && t / D < K) {
                        float sum = 0.f;
#pragma unroll
                        for (int v = 0; v < VW; ++v) sum = fmaf(xv[v], gyv[q][v], sum);
                        part[q][t / D] = sum;
                    }
                }
            }
            for (int m = 1; m < lanes; m <<= 1) {
#pragma unroll
                for (int q = 0; q < P; ++q)
#pragma unroll
                    for (int j = 0; j < K; ++j) part[q][j] += __shfl_xor_sync(group_mask, part[q][j], m);
            }
#pragma unroll
            for (int q = 0; q < P; ++q) {
                const int wo = w0 + px * P + q;
                if (wo < g.Wo) {
                    elem_t* out = gw + kernel_offset(g, n, ho, wo, g0 + gl) + i * K;
#pragma unroll
                    for (int j = 0; j < K; ++j)
                        if ((q * K + j) % lanes == lane_in_group) out[j] = from_float(part[q][j]);
                }
            }
        }
    };
    pipeline(ho0, ho_end, stage, compute);
}

// grad_x[n, hi, wi, c] = sum over the taps (i, j) and output pixels (ho, wo) with ho*S + i*D - pad = hi and
// wo*S + j*D - pad = wi of W[n, ho, wo, g(c), i*K + j] * grad_y[n, ho, wo, c]: a gather, no atomics. A block owns
// a strip of input rows and a tile of PXT*P*S input columns; it stages grad_y's output rows in a ring (as the
// forward stages x) and, for each input row, the kernel row i of each output row that reaches it. A thread owns
// VW channels of P input pixels (S apart, one phase at a time where S > 1).
extern "C" __global__ void __launch_bounds__(MAX_THREADS, 1)
    aggregate_backward_input(const elem_t* __restrict__ gy, const elem_t* __restrict__ w, elem_t* __restrict__ gx,
                             const Geometry g) {
    extern __shared__ __align__(16) unsigned char smem[];
    const BlockCoords blk = block_coords(g);
    const int CB = g.CB, CBG = CB / g.GC, TWO = g.TWO;
    const int TWI = g.PXT * P * S;
    elem_t* gys = reinterpret_cast<elem_t*>(smem);
    elem_t* wxs = gys + OUT_RING * TWO * CB;
    const int kbuf = K * TWO * CBG * K;  // one buffer of staged kernel rows: [i][output column][group][j]
    const int c0 = blk.slice * CB, g0 = c0 / g.GC, qs = blk.tile * TWI, n = blk.n;
    const int ct = threadIdx.x % (CB / VW), px = threadIdx.x / (CB / VW);
    const int gl = ct * VW / g.GC;
    const int wo_start = floor_div(qs + g.pad - (K - 1) * D, S);
    const int hi0 = blk.strip * g.RB, hi_end = min(hi0 + g.RB, g.H);

    auto stage = [&](int hi, int buf, bool first) {
        const int up = floor_div(hi + g.pad, S);
        const int lo = first ? floor_div(hi + g.pad - (K - 1) * D + S - 1, S) : floor_div(hi - 1 + g.pad, S) + 1;
        stage_rows(gy, gys, n, lo, up, g.Ho, g.Wo, g.C, wo_start, TWO, c0, CB, OUT_RING);
        // Kernel rows: plain loads (a row of K taps is K elements, not 16-byte aligned), K independent ones a
        // thread for each (output column, group) of a kernel row i.
        elem_t* wb = wxs + buf * kbuf;
        const int pairs = TWO * CBG;
#pragma unroll 1
        for (int i = 0; i < K; ++i) {
            const int num = hi + g.pad - i * D;
            const int ho = floor_div(num, S);
            const bool row_ok = floor_mod(num, S) == 0 && ho >= 0 && ho < g.Ho;
            for (int r = threadIdx.x; r < pairs; r += blockDim.x) {
                const int oc = r / CBG, gr = r - oc * CBG;
                const int wo = wo_start + oc;
                elem_t* dst = wb + (i * pairs + r) * K;
                elem_t v[K];
                if (row_ok && wo >= 0 && wo < g.Wo) {
                    const elem_t* src = w + kernel_offset(g, n, ho, wo, g0 + gr) + i * K;
#pragma unroll
                    for (int j = 0; j < K; ++j) v[j] = src[j];
                } else {
#pragma unroll
                    for (int j = 0; j < K; ++j) v[j] = elem_t(0);
                }
#pragma unroll
                for (int j = 0; j < K; ++j) dst[j] = v[j];
            }
        }
    };
    auto compute = [&](int hi, int buf) {
        const elem_t* wb = wxs + buf * kbuf;
        float acc[P][VW];
        if constexpr (S == 1) {
#pragma unroll
            for (int q = 0; q < P; ++q)
#pragma unroll
                for (int v = 0; v < VW; ++v) acc[q][v] = 0.f;
#pragma unroll 1
            for (int i = 0; i < K; ++i) {
                const int ho = hi + g.pad - i * D;
                if (ho < 0 || ho >= g.Ho) continue;
                const elem_t* gyrow = gys + (floor_mod(ho, OUT_RING) * TWO + px * P) * CB + ct * VW;
                const elem_t* wrow = wb + ((i * TWO + px * P) * CBG + gl) * K;
#pragma unroll
                for (int cc = 0; cc < P + (K - 1) * D; ++cc) {  // output column px*P + cc of the tile
                    float gv[VW];
                    load_vec(gyrow + cc * CB, gv);
#pragma unroll
                    for (int q = 0; q < P; ++q) {
                        const int t = cc - q;  // = (K - 1 - j) * D for the tap j that reaches pixel q
                        if (t >= 0 && t % D == 0 && t / D < K) {
                            const float kv = to_float(wrow[cc * CBG * K + (K - 1 - t / D)]);
#pragma unroll
                            for (int v = 0; v < VW; ++v) acc[q][v] = fmaf(kv, gv[v], acc[q][v]);
                        }
                    }
                }
            }
#pragma unroll
            for (int q = 0; q < P; ++q) {
                const int wi = qs + px * P + q;
                if (wi < g.W)
                    store_vec(gx + ((static_cast<long long>(n) * g.H + hi) * g.W + wi) * g.C + c0 + ct * VW, acc[q]);
            }
        } else {
#pragma unroll
            for (int ph = 0; ph < S; ++ph) {
#pragma unroll
                for (int q = 0; q < P; ++q)
#pragma unroll
                    for (int v = 0; v < VW; ++v) acc[q][v] = 0.f;
#pragma unroll 1
                for (int i = 0; i < K; ++i) {
                    const int num = hi + g.pad - i * D;
                    const int ho = floor_div(num, S);
                    if (floor_mod(num, S) != 0 || ho < 0 || ho >= g.Ho) continue;
                    const elem_t* gyrow = gys + floor_mod(ho, OUT_RING) * TWO * CB + ct * VW;
                    const elem_t* wrow = wb + (i * TWO * CBG + gl) * K;
#pragma unroll
                    for (int j = 0; j < K; ++j) {
                        const int numc = qs + ph + g.pad - j * D;
                        if (floor_mod(numc, S) != 0) continue;
                        const int oc0 = px * P + floor_div(numc, S) - wo_start;
#pragma unroll
                        for (int q = 0; q < P; ++q) {
                            float gv[VW];
                            load_vec(gyrow + (oc0 + q) * CB, gv);
                            const float kv = to_float(wrow[(oc0 + q) * CBG * K + j]);
#pragma unroll
                            for (int v = 0; v < VW; ++v) acc[q][v] = fmaf(kv, gv[v], acc[q][v]);
                        }
                    }
                }
#pragma unroll
                for (int q = 0; q < P; ++q) {
                    const int wi = qs + px * P * S + ph + S * q;
                    if (wi < g.W)
                        store_vec(gx + ((static_cast<long long>(n) * g.H + hi) * g.W + wi) * g.C + c0 + ct * VW,
                                  acc[q]);
                }
            }
        }
    };
    pipeline(hi0, hi_end, stage, compute);
}
