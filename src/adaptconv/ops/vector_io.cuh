// Element types, 16-byte vectors and asynchronous copies for the operators' CUDA C++ kernels (compiled by NVRTC).
//
// Self-contained: no CUDA header is included, so NVRTC needs nothing but itself (the conversions are the PTX
// instructions cuda_bf16.h / cuda_fp16.h would emit; sm_80 or newer). Compile with -DDTYPE=0 (float32),
// 1 (float16) or 2 (bfloat16).
#pragma once

#ifndef DTYPE
#error "define DTYPE: 0 float32, 1 float16, 2 bfloat16"
#endif

#if DTYPE == 0
typedef float elem_t;
#else
typedef unsigned short elem_t;  // the bits of a float16 or bfloat16
#endif

//: elements in one 16-byte vector
constexpr int VW = 16 / sizeof(elem_t);

__device__ __forceinline__ float to_float(elem_t v) {
#if DTYPE == 0
    return v;
#elif DTYPE == 1
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v));
    return f;
#else
    return __uint_as_float(static_cast<unsigned>(v) << 16);
#endif
}

__device__ __forceinline__ elem_t from_float(float f) {
#if DTYPE == 0
    return f;
#else
    elem_t v;
#if DTYPE == 1
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(v) : "f"(f));
#else
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(v) : "f"(f));
#endif
    return v;
#endif
}

// The VW elements of a 16-byte vector, given as its four 32-bit words, as floats.
__device__ __forceinline__ void unpack_vec(const uint4 u, float (&out)[VW]) {
    const unsigned words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
#if DTYPE == 0
        out[k] = __uint_as_float(words[k]);
#elif DTYPE == 1
        out[2 * k] = to_float(static_cast<elem_t>(words[k] & 0xffffu));
        out[2 * k + 1] = to_float(static_cast<elem_t>(words[k] >> 16));
#else
        out[2 * k] = __uint_as_float(words[k] << 16);
        out[2 * k + 1] = __uint_as_float(words[k] & 0xffff0000u);
#endif
    }
}

// The VW elements of one 16-byte vector at p (16-byte aligned, shared or global memory) as floats.
__device__ __forceinline__ void load_vec(const elem_t* p, float (&out)[VW]) {
    unpack_vec(*reinterpret_cast<const uint4*>(p), out);
}

// One 16-byte load from global memory through the read-only (non-coherent) path, L1 then L2, for memory no thread
// of the launch writes. Volatile with a memory clobber, so that it stays where it is written among the shared-memory
// reads: unrolled loops of such loads would otherwise be hoisted to their top, holding every vector in registers.
__device__ __forceinline__ uint4 load_global_nc16(const void* p) {
    uint4 u;
    asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p)
                 : "memory");
    return u;
}

// The VW elements of the 16-byte vector at p (global memory, 16-byte aligned) as floats where ok, else zeros; p is
// not read where !ok.
__device__ __forceinline__ void load_vec_global(const elem_t* p, bool ok, float (&out)[VW]) {
    unpack_vec(ok ? load_global_nc16(p) : make_uint4(0u, 0u, 0u, 0u), out);
}

// Store VW floats, rounded to elem_t, as one 16-byte vector at p (16-byte aligned).
__device__ __forceinline__ void store_vec(elem_t* p, const float (&v)[VW]) {
    unsigned words[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
#if DTYPE == 0
        words[k] = __float_as_uint(v[k]);
#else
        words[k] = static_cast<unsigned>(from_float(v[2 * k])) | (static_cast<unsigned>(from_float(v[2 * k + 1])) << 16);
#endif
    }
    *reinterpret_cast<uint4*>(p) = make_uint4(words[0], words[1], words[2], words[3]);
}

// Copy one 16-byte vector (both addresses 16-byte aligned).
__device__ __forceinline__ void copy16(void* dst, const void* src) {
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
}

// Asynchronous 16-byte copy global -> shared (cp.async, sm_80+): src_bytes (0..16) are read, the rest of the 16
// bytes is zero-filled, so src_bytes = 0 writes zeros (padding) without touching global memory.
__device__ __forceinline__ void copy_async16(void* dst_shared, const void* src_global, int src_bytes) {
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(dst_shared));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src_global), "r"(src_bytes));
}

__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

// Wait until at most N of this thread's committed groups of copies are still in flight.
template <int N>
__device__ __forceinline__ void copy_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Floor division and non-negative remainder for a positive divisor (C++ rounds towards zero).
__device__ __forceinline__ int floor_div(int a, int b) { return (a >= 0 ? a : a - b + 1) / b; }
__device__ __forceinline__ int floor_mod(int a, int b) { return a - floor_div(a, b) * b; }
