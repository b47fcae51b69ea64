// Classifier kernels: tiled GEMM with fused epilogue, implicit-GEMM convolution, pooling,
// max-feature-map, per-channel affine, calibrated sigmoid, softmax. Each takes its parameter
// struct (the layout of the WGSL kernel's `Params`, filled by src/backend/gpu/), then its
// inputs, then its output.

struct MatmulParams {  // shaders/gemm.wgsl
    unsigned int m, n, k, b_trans, has_bias, act;
    float slope;
    unsigned int log_kind;
    float eps;
    unsigned int has_residual;
};
struct ConvParams {  // shaders/conv.wgsl
    unsigned int c, h, w, o, kh, kw, sh, sw, ph, pw, ho, wo, has_bias, act;
    float slope;
};
struct AffineParams {  // shaders/affine.wgsl
    unsigned int n, channels, inner, act;
    float slope;
};
struct LayersParams {  // shaders/layers.wgsl
    unsigned int n, channels, inner, h, w, ho, wo, kh, kw, sh, sw, ph, pw, act;
    float slope;
    unsigned int mode;
    float scale, shift;
    unsigned int classes;
};

// The GEMMs' epilogue at (row, col): bias, activation, log compression, then the residual add
// of a transformer block's projection (where has_residual).
__device__ __forceinline__ void matmul_epilogue(const MatmulParams& p, const float* bias,
                                                const float* residual, float* out, int row,
                                                int col, float acc) {
    float v = acc + (p.has_bias ? bias[col] : 0.0f);
    v = compress(activate(v, p.act, p.slope), p.log_kind, p.eps);
    long long at = (long long)row * p.n + col;
    out[at] = p.has_residual ? v + residual[at] : v;
}

// out[M, N] = compress(activate(a[M, K] · B + bias)) + residual; B is [K, N], or [N, K] when
// b_trans.
extern "C" __global__ void matmul(const MatmulParams params, const float* a, const float* b,
                                  const float* bias, const float* residual, float* out) {
    const int m = params.m, n = params.n, k = params.k, b_trans = params.b_trans;
    __shared__ float ta[TILE][TILE];
    __shared__ float tb[TILE][TILE + 1];
    int row = blockIdx.y * TILE + threadIdx.y;
    int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int s = 0; s < k; s += TILE) {
        int ka = s + threadIdx.x;
        ta[threadIdx.y][threadIdx.x] = (row < m && ka < k) ? a[(long long)row * k + ka] : 0.0f;
        int kb = s + threadIdx.y;
        float vb = 0.0f;
        if (col < n && kb < k) vb = b_trans ? b[(long long)col * k + kb] : b[(long long)kb * n + col];
        tb[threadIdx.y][threadIdx.x] = vb;
        __syncthreads();
#pragma unroll
        for (int i = 0; i < TILE; i++) acc += ta[threadIdx.y][i] * tb[i][threadIdx.x];
        __syncthreads();
    }
    if (row < m && col < n) matmul_epilogue(params, bias, residual, out, row, col, acc);
}

// `matmul` on tensor cores (TF32 inputs, f32 accumulation): one 128-thread block per 64x64
// output tile (blockIdx.x over columns, blockIdx.y over rows), epilogue as `matmul`'s.
extern "C" __global__ void matmul_tc(const MatmulParams params, const float* a, const float* b,
                                     const float* bias, const float* residual, float* out) {
    const int m = params.m, n = params.n, k = params.k, b_trans = params.b_trans;
    tc_gemm_tile(
        blockIdx.y * TC_BM, blockIdx.x * TC_BN, k, !b_trans,
        [&](int row, int kk) { return row < m && kk < k ? a[(long long)row * k + kk] : 0.0f; },
        [&](int kk, int col) {
            if (kk >= k || col >= n) return 0.0f;
            return b_trans ? b[(long long)col * k + kk] : b[(long long)kk * n + col];
        },
        [&](int row, int col, float acc) {
            if (row < m && col < n) matmul_epilogue(params, bias, residual, out, row, col, acc);
        });
}

// `matmul_tc` for linear layers (b_trans, k a multiple of 4) with its tiles copied by cp.async in
// two stages (`tc_gemm_tile_async`); opt-in: DEEPSCREEN_CUDA_ASYNC_COPY=1.
extern "C" __global__ void matmul_tc_async(const MatmulParams params, const float* a,
                                           const float* b, const float* bias,
                                           const float* residual, float* out) {
    const int m = params.m, n = params.n;
    tc_gemm_tile_async(blockIdx.y * TC_BM, blockIdx.x * TC_BN, m, n, params.k, a, b,
                       [&](int row, int col, float acc) {
                           if (row < m && col < n)
                               matmul_epilogue(params, bias, residual, out, row, col, acc);
                       });
}

// Element (r, px) of conv2d's virtual im2col matrix of one batch item (input `xi`), r = (channel
// * kh + ki) * kw + kj: the input under tap (ki, kj) of output pixel px, zero in the padding
// (shared by `conv2d` and `conv2d_tc`).
__device__ __forceinline__ float conv2d_col(const ConvParams& p, const float* xi, int r, int px) {
    const int kw = p.kw, kk = p.kh * p.kw, wo = p.wo;
    if (r >= (int)p.c * kk || px >= (int)p.ho * wo) return 0.0f;
    int ch = r / kk, tap = r % kk;
    int ih = (px / wo) * (int)p.sh + tap / kw - (int)p.ph;
    int iw = (px % wo) * (int)p.sw + tap % kw - (int)p.pw;
    if (ih < 0 || iw < 0 || ih >= (int)p.h || iw >= (int)p.w) return 0.0f;
    return xi[((long long)ch * p.h + ih) * p.w + iw];
}

// Implicit-GEMM convolution: per batch item (blockIdx.z), out[O, Ho*Wo] = W[O, C*kh*kw] · cols,
// with 16×16 tiles of the virtual im2col matrix gathered straight into shared memory.
extern "C" __global__ void conv2d(const ConvParams params, const float* x, const float* weight,
                                  const float* bias, float* out) {
    const int o = params.o, has_bias = params.has_bias, act = params.act;
    const float slope = params.slope;
    __shared__ float tw[TILE][TILE];
    __shared__ float tx[TILE][TILE + 1];
    int item = blockIdx.z;
    int oc = blockIdx.y * TILE + threadIdx.y;
    int px = blockIdx.x * TILE + threadIdx.x;
    int k_total = params.c * params.kh * params.kw;
    int hw_out = params.ho * params.wo;
    const float* xi = x + (long long)item * params.c * params.h * params.w;
    float acc = 0.0f;
    for (int s = 0; s < k_total; s += TILE) {
        int ka = s + threadIdx.x;
        tw[threadIdx.y][threadIdx.x] = (oc < o && ka < k_total) ? weight[(long long)oc * k_total + ka] : 0.0f;
        tx[threadIdx.y][threadIdx.x] = conv2d_col(params, xi, s + threadIdx.y, px);
        __syncthreads();
#pragma unroll
        for (int i = 0; i < TILE; i++) acc += tw[threadIdx.y][i] * tx[i][threadIdx.x];
        __syncthreads();
    }
    if (oc < o && px < hw_out) {
        float v = acc + (has_bias ? bias[oc] : 0.0f);
        out[((long long)item * o + oc) * hw_out + px] = activate(v, act, slope);
    }
}

// `conv2d` on tensor cores: per batch item (blockIdx.z), 64x64 tiles of out[O, Ho*Wo]
// (blockIdx.y over channels, blockIdx.x over pixels), the im2col columns gathered as B.
extern "C" __global__ void conv2d_tc(const ConvParams params, const float* x, const float* weight,
                                     const float* bias, float* out) {
    const int o = params.o, has_bias = params.has_bias, act = params.act;
    const float slope = params.slope;
    const int item = blockIdx.z;
    const int k_total = params.c * params.kh * params.kw, hw_out = params.ho * params.wo;
    const float* xi = x + (long long)item * params.c * params.h * params.w;
    tc_gemm_tile(
        blockIdx.y * TC_BM, blockIdx.x * TC_BN, k_total, true,
        [&](int oc, int r) {
            return oc < o && r < k_total ? weight[(long long)oc * k_total + r] : 0.0f;
        },
        [&](int r, int px) { return conv2d_col(params, xi, r, px); },
        [&](int oc, int px, float acc) {
            if (oc >= o || px >= hw_out) return;
            float v = acc + (has_bias ? bias[oc] : 0.0f);
            out[((long long)item * o + oc) * hw_out + px] = activate(v, act, slope);
        });
}

extern "C" __global__ void channel_affine(const AffineParams params, const float* x,
                                          const float* scale, const float* shift, float* out) {
    const long long n = params.n;
    const int channels = params.channels, inner = params.inner, act = params.act;
    const float slope = params.slope;
    long long id = global_id();
    if (id >= n) return;
    int ch = (int)((id / inner) % channels);
    out[id] = activate(x[id] * scale[ch] + shift[ch], act, slope);
}

// n outputs of [B, C/2, inner]; channels = C of the input
extern "C" __global__ void mfm(const LayersParams params, const float* x, float* out) {
    const long long n = params.n;
    const int channels = params.channels, inner = params.inner;
    long long id = global_id();
    if (id >= n) return;
    long long half = (long long)(channels / 2) * inner;
    long long item = id / half, r = id % half;
    out[id] = fmaxf(x[item * 2 * half + r], x[item * 2 * half + half + r]);
}

extern "C" __global__ void max_pool2d(const LayersParams params, const float* x, float* out) {
    const long long n = params.n;
    const int h = params.h, w = params.w, ho = params.ho, wo = params.wo, kh = params.kh;
    const int kw = params.kw, sh = params.sh, sw = params.sw, ph = params.ph, pw = params.pw;
    long long id = global_id();
    if (id >= n) return;
    long long plane = id / ((long long)ho * wo);
    int r = (int)(id % ((long long)ho * wo));
    int oh = r / wo, ow = r % wo;
    const float* p = x + plane * h * w;
    float m = -3.402823e38f;
    for (int i = 0; i < kh; i++) {
        int ih = oh * sh + i - ph;
        if (ih < 0 || ih >= h) continue;
        for (int j = 0; j < kw; j++) {
            int iw = ow * sw + j - pw;
            if (iw >= 0 && iw < w) m = fmaxf(m, p[(long long)ih * w + iw]);
        }
    }
    out[id] = m;
}

// One 256-thread block per plane (n planes); mode 0 = average, 1 = max.
extern "C" __global__ void global_pool(const LayersParams params, const float* x, float* out) {
    const long long planes = params.n;
    const int inner = params.inner, mode = params.mode;
    __shared__ float partial[256];
    long long plane = blockIdx.x + (long long)blockIdx.y * gridDim.x;
    if (plane >= planes) return;
    const float* p = x + plane * inner;
    float acc = mode == 1 ? -3.402823e38f : 0.0f;
    for (int i = threadIdx.x; i < inner; i += blockDim.x) acc = mode == 1 ? fmaxf(acc, p[i]) : acc + p[i];
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float a = partial[threadIdx.x], b = partial[threadIdx.x + s];
            partial[threadIdx.x] = mode == 1 ? fmaxf(a, b) : a + b;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[plane] = mode == 1 ? partial[0] : partial[0] / inner;
}

extern "C" __global__ void sigmoid(const LayersParams params, const float* x, float* out) {
    const long long n = params.n;
    const float scale = params.scale, shift = params.shift;
    long long id = global_id();
    if (id >= n) return;
    float z = scale * x[id] + shift;
    float e = expf(-fabsf(z));
    out[id] = z >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

// n rows of `classes` values.
extern "C" __global__ void softmax(const LayersParams params, const float* x, float* out) {
    const long long rows = params.n;
    const int classes = params.classes;
    long long row = global_id();
    if (row >= rows) return;
    const float* p = x + row * classes;
    float m = -3.402823e38f;
    for (int i = 0; i < classes; i++) m = fmaxf(m, p[i]);
    float s = 0.0f;
    for (int i = 0; i < classes; i++) s += expf(p[i] - m);
    for (int i = 0; i < classes; i++) out[row * classes + i] = expf(p[i] - m) / s;
}
