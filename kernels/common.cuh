// Shared by every deepscreen CUDA kernel file (prepended to each at build time, see
// KERNELS in src/backend/cuda/mod.rs): the epilogue functions and the folded 2-D thread id.

#define TILE 16

__device__ __forceinline__ float activate(float x, int kind, float slope) {
    switch (kind) {
        case 1: return fmaxf(x, 0.0f);
        case 2: return x >= 0.0f ? x : x * slope;
        case 3: return 1.0f / (1.0f + expf(-x));
        case 4: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        default: return x;
    }
}

__device__ __forceinline__ float compress(float x, int kind, float eps) {
    switch (kind) {
        case 1: return logf(x + eps);
        case 2: return log10f(x + eps);
        case 3: return 10.0f * log10f(fmaxf(x, eps));
        case 4: return log10f(fmaxf(x, eps));
        default: return x;
    }
}

__device__ __forceinline__ long long global_id() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x +
           (long long)blockIdx.y * gridDim.x * blockDim.x;
}


// ---- Tensor cores (compute capability 8.0 and newer) ---------------------------------------
// TF32 inputs, f32 accumulation: mma.sync.m16n8k8. Per warp, with g = lane / 4, t = lane % 4:
// A (16x8, row-major) a0 = (g, t), a1 = (g+8, t), a2 = (g, t+4), a3 = (g+8, t+4);
// B (8x8) b0 = (t, g), b1 = (t+4, g); C/D (16x8) c0 = (g, 2t), c1 = (g, 2t+1), c2 = (g+8, 2t),
// c3 = (g+8, 2t+1). The host launches these kernels only on such devices (`Math::Tf32`); on
// older ones they compile to a trap. The CUDA emulator supplies both functions and
// __shfl_xor_sync (emulator.h).
#ifndef CUDA_EMULATOR
__device__ __forceinline__ unsigned int tf32(float x) {
#if __CUDA_ARCH__ >= 800
    unsigned int r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
#else
    return __float_as_uint(x);
#endif
}

__device__ __forceinline__ void mma_tf32(float* d, const unsigned int* a, const unsigned int* b) {
#if __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap();
#endif
}

// Asynchronous copies (compute capability 8.0 and newer): 16 bytes from global to shared
// memory without passing through registers, zero-filled where `valid` is false (then nothing
// is read, and `src` need only be a valid address); grouped by commit, waited for by group
// (`cp_async_wait<N>`: all but the newest N groups have landed).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
#if __CUDA_ARCH__ >= 800
    unsigned int s = (unsigned int)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
#else
    __trap();
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

#endif

// Reductions over the four threads that share a row of an mma fragment (lanes 4g..4g+3).
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// The block tile of the tensor-core GEMMs: 64x64 outputs, 32 deep per step, four warps in a
// 2x2 layout, each owning 32x32 (two m16 by four n8 tiles).
#define TC_BM 64
#define TC_BN 64
#define TC_BK 32
#define TC_THREADS 128

// A 64x64 tile's staged inputs: rows padded to 36 words, so that the fragment reads below hit
// 32 different banks.
#define TC_ROW (TC_BK + 4)

// One TC_BK-deep step of a warp's 32x32 products from the staged tiles `sa` (A's rows) and `sb`
// (B's columns), each [64][TC_ROW]: TF32 bits, or (`convert`) raw f32 bits rounded to TF32 as
// the fragments are read.
template <bool convert>
__device__ __forceinline__ void tc_tile_products(const unsigned int (*sa)[TC_ROW],
                                                 const unsigned int (*sb)[TC_ROW], int wm,
                                                 int wn, int g, int t, float (*acc)[4][4]) {
    auto frag = [](unsigned int v) { return convert ? tf32(__uint_as_float(v)) : v; };
#pragma unroll
    for (int kk = 0; kk < TC_BK; kk += 8) {
        unsigned int af[2][4], bf[4][2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            int r = wm + i * 16 + g;
            af[i][0] = frag(sa[r][kk + t]);
            af[i][1] = frag(sa[r + 8][kk + t]);
            af[i][2] = frag(sa[r][kk + t + 4]);
            af[i][3] = frag(sa[r + 8][kk + t + 4]);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int c = wn + j * 8 + g;
            bf[j][0] = frag(sb[c][kk + t]);
            bf[j][1] = frag(sb[c][kk + t + 4]);
        }
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) mma_tf32(acc[i][j], af[i], bf[j]);
    }
}

// Hand a warp's 32x32 results at (m0 + wm, n0 + wn) to `store(row, col, value)`.
template <typename Store>
__device__ __forceinline__ void tc_tile_store(int m0, int n0, int wm, int wn, int g, int t,
                                              float (*acc)[4][4], Store store) {
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            int row = m0 + wm + i * 16 + g, col = n0 + wn + j * 8 + 2 * t;
            store(row, col, acc[i][j][0]);
            store(row, col + 1, acc[i][j][1]);
            store(row + 8, col, acc[i][j][2]);
            store(row + 8, col + 1, acc[i][j][3]);
        }
}

// out tile at (m0, n0) of A[M, K] · B[K, N], with A and B read through `load_a(row, k)` and
// `load_b(k, col)` (which return 0 outside the matrices) and each result handed to
// `store(row, col, value)` (which skips outside). `b_col_inner`: consecutive threads read
// consecutive columns of B (coalesced when B is k-major) rather than consecutive k.
template <typename LoadA, typename LoadB, typename Store>
__device__ __forceinline__ void tc_gemm_tile(int m0, int n0, int k, bool b_col_inner,
                                             LoadA load_a, LoadB load_b, Store store) {
    __shared__ unsigned int sa[TC_BM][TC_ROW];
    __shared__ unsigned int sb[TC_BN][TC_ROW];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    float acc[2][4][4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
    for (int k0 = 0; k0 < k; k0 += TC_BK) {
        for (int i = tid; i < TC_BM * TC_BK; i += TC_THREADS) {
            int r = i / TC_BK, c = i % TC_BK;
            sa[r][c] = tf32(load_a(m0 + r, k0 + c));
        }
        if (b_col_inner) {
            for (int i = tid; i < TC_BN * TC_BK; i += TC_THREADS) {
                int c = i / TC_BN, r = i % TC_BN;
                sb[r][c] = tf32(load_b(k0 + c, n0 + r));
            }
        } else {
            for (int i = tid; i < TC_BN * TC_BK; i += TC_THREADS) {
                int r = i / TC_BK, c = i % TC_BK;
                sb[r][c] = tf32(load_b(k0 + c, n0 + r));
            }
        }
        __syncthreads();
        tc_tile_products<false>(sa, sb, wm, wn, g, t, acc);
        __syncthreads();
    }
    tc_tile_store(m0, n0, wm, wn, g, t, acc, store);
}

// The same tile for A[M, K] · B[N, K]ᵀ with both k-contiguous and K a multiple of 4 (linear
// layers), the inputs copied by cp.async in two stages: step s + 1's copy is in flight while
// step s's products run, and the tiles are rounded to TF32 as the fragments are read.
template <typename Store>
__device__ __forceinline__ void tc_gemm_tile_async(int m0, int n0, int m, int n, int k,
                                                   const float* a, const float* b,
                                                   Store store) {
    __shared__ __align__(16) unsigned int sa[2][TC_BM][TC_ROW];
    __shared__ __align__(16) unsigned int sb[2][TC_BN][TC_ROW];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    float acc[2][4][4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
    // One stage: 64 rows of 32 values of A and of B, as 16-byte pieces (a row's eight pieces
    // by eight neighbouring threads); past the matrices' edges, zeros.
    auto stage = [&](int buf, int k0) {
        for (int i = tid; i < TC_BM * TC_BK / 4; i += TC_THREADS) {
            int r = i / (TC_BK / 4), c = (i % (TC_BK / 4)) * 4;
            int row = m0 + r, col = n0 + r, kk = k0 + c;
            bool in_a = row < m && kk < k, in_b = col < n && kk < k;
            cp_async16(&sa[buf][r][c], in_a ? a + (long long)row * k + kk : a, in_a);
            cp_async16(&sb[buf][r][c], in_b ? b + (long long)col * k + kk : b, in_b);
        }
        cp_async_commit();
    };
    const int steps = (k + TC_BK - 1) / TC_BK;
    if (steps > 0) stage(0, 0);
    for (int s = 0; s < steps; s++) {
        if (s + 1 < steps) {
            stage((s + 1) & 1, (s + 1) * TC_BK);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        tc_tile_products<true>(sa[s & 1], sb[s & 1], wm, wn, g, t, acc);
        __syncthreads();
    }
    tc_tile_store(m0, n0, wm, wn, g, t, acc, store);
}
