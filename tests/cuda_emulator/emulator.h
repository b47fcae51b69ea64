// Device-language shim: compiles the CUDA C++ kernels in kernels/*.cu as ordinary C++ so the
// CUDA backend can be tested on a machine without a GPU (see driver.cpp and
// tests/common/cuda_emulator.rs). Every CUDA thread of a block runs as a fiber on one OS thread;
// __syncthreads() switches back to the scheduler, which runs every thread of the block up to
// its next barrier before any passes it. Only what kernels/*.cu uses is provided.
#pragma once
#include <math.h>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#define __global__
#define __device__ static
#define __forceinline__ inline
// A block's threads run one after another on one OS thread, so a function-local static is
// exactly one copy per block, as __shared__ memory is.
#define __shared__ static

struct emu_dim3 {
    unsigned x, y, z;
};
extern emu_dim3 emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim

// The launch's dynamic shared memory (`extern __shared__ T name[];` is rewritten to use it).
extern unsigned char emu_dynamic_shared[];

extern "C" void emu_syncthreads();
#define __syncthreads() emu_syncthreads()

struct float2 {
    float x, y;
};
static inline float2 make_float2(float x, float y) { return float2{x, y}; }

static inline unsigned int __brev(unsigned int v) {
    unsigned int r = 0;
    for (int i = 0; i < 32; i++) r |= ((v >> i) & 1u) << (31 - i);
    return r;
}
static inline void sincospif(float x, float* s, float* c) {
    const double a = 3.14159265358979323846 * (double)x;
    *s = (float)sin(a);
    *c = (float)cos(a);
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline unsigned int __float_as_uint(float x) {
    unsigned int u;
    memcpy(&u, &x, 4);
    return u;
}
static inline float __uint_as_float(unsigned int u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

// Tensor cores (kernels/common.cuh). A warp's collective operations exchange values through
// the emulator: every thread deposits its part, then a block-wide barrier, then each reads
// what it needs, then another barrier. That is exact as long as every thread of the block
// reaches the same collective calls in the same order, which the kernels using them keep.
#define CUDA_EMULATOR
// Round to TF32 (10 mantissa bits), to nearest with ties away from zero, as cvt.rna.tf32.f32.
static inline unsigned int tf32(float x) {
    unsigned int u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;  // inf, NaN
    return (u + 0x1000u) & 0xffffe000u;
}
// d += A · B for one warp's m16n8k8 fragments (layout in kernels/common.cuh).
extern "C" void emu_mma_tf32(float* d, const unsigned int* a, const unsigned int* b);
static inline void mma_tf32(float* d, const unsigned int* a, const unsigned int* b) {
    emu_mma_tf32(d, a, b);
}
// __shfl_xor_sync over the full warp (the kernels pass the full mask).
extern "C" float emu_shfl_xor(float v, int lane_mask);
static inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
    return emu_shfl_xor(v, lane_mask);
}
#define __syncwarp() emu_syncthreads()
// Asynchronous copies land at once here (the threads run one after another up to each
// barrier, so a copy that is complete before the wait is what the hardware guarantees after it).
#define __align__(n) __attribute__((aligned(n)))
static inline void cp_async16(void* dst, const void* src, bool valid) {
    if (valid) {
        memcpy(dst, src, 16);
    } else {
        memset(dst, 0, 16);
    }
}
static inline void cp_async_commit() {}
template <int N>
static inline void cp_async_wait() {}

// Launching: a kernel's parameters arrive as cuLaunchKernel's array of pointers to values.
typedef void (*emu_launcher)(void** params);
int emu_register(const char* name, emu_launcher launch, bool uses_barriers);

template <typename... A, std::size_t... I>
void emu_invoke_with(void (*kernel)(A...), void** p, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
}
template <typename... A>
void emu_invoke(void (*kernel)(A...), void** p) {
    emu_invoke_with(kernel, p, std::index_sequence_for<A...>{});
}
#define EMU_REGISTER(name, barriers)                                     \
    static void emu_launch_##name(void** p) { emu_invoke(name, p); }     \
    static int emu_registered_##name = emu_register(#name, emu_launch_##name, barriers);
