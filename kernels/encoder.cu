// Encoder kernels: channels-last 1-D convolution as an implicit GEMM (bias and activation
// fused), layer normalisation (one block per row), multi-head self-attention with an online
// softmax (one 64-thread block per window, head and query), and a broadcast add.

// Each takes its parameter struct (the layout of the WGSL kernel's `Params`, filled by
// src/backend/gpu/), then its inputs, then its output.

#define MAX_HEAD_DIM 128

struct EncoderParams {  // shaders/encoder.wgsl
    unsigned int len, channels, out_channels, kernel, stride, padding, out_len, has_bias, act;
    float slope;
    unsigned int rows, dim;
    float eps;
};
struct AttentionParams {  // shaders/attention.wgsl
    unsigned int batch, len, dim, heads, head_dim;
    float scale;
};
struct AddParams {  // shaders/add.wgsl
    unsigned int n, m;
};

// conv1d as a GEMM (shared by `conv1d` and `conv1d_tc`): element (t, r) of the virtual im2col
// matrix of window b, r = tap * channels + channel, zero in the padding and outside; and element
// (r, o) of the weight [out, channels, taps] read as a [taps * channels, out] matrix.
__device__ __forceinline__ float conv1d_tap(const EncoderParams& p, const float* x, long long b,
                                            int t, int r) {
    const int channels = p.channels;
    if (t >= (int)p.out_len || r >= (int)p.kernel * channels) return 0.0f;
    int src = t * (int)p.stride + r / channels - (int)p.padding;
    if (src < 0 || src >= (int)p.len) return 0.0f;
    return x[(b * p.len + src) * channels + r % channels];
}
__device__ __forceinline__ float conv1d_weight(const EncoderParams& p, const float* w, int r,
                                               int o) {
    const int channels = p.channels;
    if (o >= (int)p.out_channels || r >= (int)p.kernel * channels) return 0.0f;
    return w[((long long)o * channels + r % channels) * p.kernel + r / channels];
}

// out[b, t, o] = activate(bias[o] + sum over k, c of x[b, t*stride + k - padding, c] * w[o, c, k]):
// a GEMM of (output steps x out channels) over r = k*C + c, 16x16 tiles, window b = blockIdx.z.
extern "C" __global__ void conv1d(const EncoderParams params, const float* x, const float* w,
                                  const float* bias, float* out) {
    const int out_channels = params.out_channels, out_len = params.out_len;
    const int has_bias = params.has_bias, act = params.act;
    const float slope = params.slope;
    __shared__ float ta[TILE][TILE];
    __shared__ float tb[TILE][TILE + 1];
    long long b = blockIdx.z;
    int t = blockIdx.y * TILE + threadIdx.y;
    int o = blockIdx.x * TILE + threadIdx.x;
    int red = params.kernel * params.channels;
    float acc = 0.0f;
    for (int s = 0; s < red; s += TILE) {
        ta[threadIdx.y][threadIdx.x] = conv1d_tap(params, x, b, t, s + threadIdx.x);
        tb[threadIdx.y][threadIdx.x] = conv1d_weight(params, w, s + threadIdx.y, o);
        __syncthreads();
#pragma unroll
        for (int i = 0; i < TILE; i++) acc += ta[threadIdx.y][i] * tb[i][threadIdx.x];
        __syncthreads();
    }
    if (t < out_len && o < out_channels) {
        float v = acc + (has_bias ? bias[o] : 0.0f);
        out[(b * out_len + t) * out_channels + o] = activate(v, act, slope);
    }
}

// `conv1d` on tensor cores: per window (blockIdx.z), 64x64 tiles of out[steps, out channels]
// (blockIdx.y over steps, blockIdx.x over channels), the input's taps gathered as A.
extern "C" __global__ void conv1d_tc(const EncoderParams params, const float* x, const float* w,
                                     const float* bias, float* out) {
    const int out_channels = params.out_channels, out_len = params.out_len;
    const int has_bias = params.has_bias, act = params.act;
    const float slope = params.slope;
    const long long b = blockIdx.z;
    tc_gemm_tile(
        blockIdx.y * TC_BM, blockIdx.x * TC_BN, params.kernel * params.channels, false,
        [&](int t, int r) { return conv1d_tap(params, x, b, t, r); },
        [&](int r, int o) { return conv1d_weight(params, w, r, o); },
        [&](int t, int o, float acc) {
            if (t >= out_len || o >= out_channels) return;
            float v = acc + (has_bias ? bias[o] : 0.0f);
            out[(b * out_len + t) * out_channels + o] = activate(v, act, slope);
        });
}

// One 256-thread block per row of `dim` values: mean, variance about it (two passes), then
// (x - mean) / sqrt(var + eps) * gamma + beta.
extern "C" __global__ void layer_norm(const EncoderParams params, const float* x,
                                      const float* gamma, const float* beta, float* out) {
    const long long rows = params.rows;
    const int dim = params.dim;
    const float eps = params.eps;
    __shared__ float partial[256];
    long long row = blockIdx.x + (long long)blockIdx.y * gridDim.x;
    if (row >= rows) return;  // whole block: the barriers below stay uniform
    const float* r = x + row * dim;
    // Two block-wide sums (inline: the CUDA emulator looks for the barriers in the entry).
    float s = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += r[i];
    partial[threadIdx.x] = s;
    __syncthreads();
    for (int k = 128; k > 0; k >>= 1) {
        if (threadIdx.x < k) partial[threadIdx.x] += partial[threadIdx.x + k];
        __syncthreads();
    }
    float mean = partial[0] / dim;
    __syncthreads();
    float q = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float d = r[i] - mean;
        q += d * d;
    }
    partial[threadIdx.x] = q;
    __syncthreads();
    for (int k = 128; k > 0; k >>= 1) {
        if (threadIdx.x < k) partial[threadIdx.x] += partial[threadIdx.x + k];
        __syncthreads();
    }
    float inv = rsqrtf(partial[0] / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        out[row * dim + i] = (r[i] - mean) * inv * gamma[i] + beta[i];
}

// qkv [B, T, 3D] -> out [B, T, D]. One 64-thread block per (window, head, query): the scaled
// query sits in shared memory; keys go by in tiles of 64, each thread scoring one key of the
// tile, then the tile's softmax terms update a running maximum and sum (online softmax) while
// each thread accumulates two of the head's output values (head width <= 128). No T x T
// matrix is stored.
extern "C" __global__ void attention(const AttentionParams params, const float* qkv, float* out) {
    const int len = params.len, dim = params.dim, heads = params.heads;
    const int head_dim = params.head_dim;
    const long long rows = (long long)params.batch * heads * len;
    const float scale = params.scale;
    __shared__ float query[MAX_HEAD_DIM];
    __shared__ float scores[64];
    long long row = blockIdx.x + (long long)blockIdx.y * gridDim.x;
    if (row >= rows) return;  // whole block: the barriers below stay uniform
    int i = row % len;
    int h = (row / len) % heads;
    long long b = row / ((long long)len * heads);
    long long stride = 3LL * dim;
    int head = h * head_dim, lane = threadIdx.x;
    for (int d = lane; d < head_dim; d += 64) query[d] = qkv[(b * len + i) * stride + head + d] * scale;
    __syncthreads();
    float m = -3.402823e38f, l = 0.0f, acc0 = 0.0f, acc1 = 0.0f;
    for (int j0 = 0; j0 < len; j0 += 64) {
        int j = j0 + lane;
        float s = -3.402823e38f;
        if (j < len) {
            const float* k = qkv + (b * len + j) * stride + dim + head;
            s = 0.0f;
            for (int d = 0; d < head_dim; d++) s += query[d] * k[d];
        }
        scores[lane] = s;
        __syncthreads();
        int n = len - j0 < 64 ? len - j0 : 64;
        float tile_max = m;
        for (int t = 0; t < n; t++) tile_max = fmaxf(tile_max, scores[t]);
        float rescale = expf(m - tile_max);
        l *= rescale;
        acc0 *= rescale;
        acc1 *= rescale;
        for (int t = 0; t < n; t++) {
            float e = expf(scores[t] - tile_max);
            l += e;
            const float* v = qkv + (b * len + j0 + t) * stride + 2LL * dim + head;
            if (lane < head_dim) acc0 += e * v[lane];
            if (lane + 64 < head_dim) acc1 += e * v[lane + 64];
        }
        m = tile_max;
        __syncthreads();
    }
    float* o = out + (b * len + i) * dim + head;
    if (lane < head_dim) o[lane] = acc0 / l;
    if (lane + 64 < head_dim) o[lane + 64] = acc1 / l;
}

// `attention` on tensor cores (TF32, f32 accumulation), flash-style: one 128-thread block per
// (64 queries, head, window) = (blockIdx.x, y, z); each warp owns 16 queries, their scaled Q
// fragments in registers. Keys and values go by in tiles of 32 through shared memory; each
// tile's scores S = Q K^T stay in registers, update the running row maximum and sum (online
// softmax, rows reduced across the four threads that share them), and the probabilities pass
// through the warp's shared P tile into O += P V. No score matrix reaches global memory.
// Head width: a multiple of 8, at most MAX_HEAD_DIM.
#define ATT_KEYS 32
extern "C" __global__ void attention_tc(const AttentionParams params, const float* qkv,
                                        float* out) {
    const int len = params.len, dim = params.dim, head_dim = params.head_dim;
    const float scale = params.scale;
    // Padded rows: the fragment reads hit 32 different banks.
    __shared__ unsigned int ks[ATT_KEYS][MAX_HEAD_DIM + 4];
    __shared__ unsigned int vs[ATT_KEYS][MAX_HEAD_DIM + 8];
    __shared__ unsigned int ps[4][16][ATT_KEYS + 4];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const long long b = blockIdx.z, stride = 3LL * dim;
    const int head = blockIdx.y * head_dim, steps = head_dim / 8;
    const int q0 = blockIdx.x * 64 + warp * 16;
    const float* base = qkv + b * len * stride;
    unsigned int qf[MAX_HEAD_DIM / 8][4];
    float o[MAX_HEAD_DIM / 8][4];
#pragma unroll
    for (int s = 0; s < MAX_HEAD_DIM / 8; s++) {
        for (int e = 0; e < 4; e++) {
            int q = q0 + g + (e & 1) * 8, d = s * 8 + t + (e >> 1) * 4;
            qf[s][e] = tf32(s < steps && q < len ? base[q * stride + head + d] * scale : 0.0f);
            o[s][e] = 0.0f;
        }
    }
    float row_max[2] = {-3.402823e38f, -3.402823e38f}, row_sum[2] = {0.0f, 0.0f};
    for (int j0 = 0; j0 < len; j0 += ATT_KEYS) {
        __syncthreads();  // the previous tile is consumed
        for (int i = tid; i < ATT_KEYS * head_dim; i += 128) {
            int key = i / head_dim, d = i % head_dim;
            bool in = j0 + key < len;
            const float* r = base + (j0 + key) * stride + head + d;
            ks[key][d] = tf32(in ? r[dim] : 0.0f);
            vs[key][d] = tf32(in ? r[2 * dim] : 0.0f);
        }
        __syncthreads();
        float s[ATT_KEYS / 8][4];
#pragma unroll
        for (int j = 0; j < ATT_KEYS / 8; j++) {
            for (int e = 0; e < 4; e++) s[j][e] = 0.0f;
#pragma unroll
            for (int st = 0; st < MAX_HEAD_DIM / 8; st++) {
                if (st < steps) {
                    unsigned int bf[2] = {ks[j * 8 + g][st * 8 + t], ks[j * 8 + g][st * 8 + t + 4]};
                    mma_tf32(s[j], qf[st], bf);
                }
            }
        }
        // Rows g (elements 0, 1) and g + 8 (elements 2, 3); keys past the end are left out.
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float mx = -3.402823e38f;
            for (int j = 0; j < ATT_KEYS / 8; j++)
                for (int c = 0; c < 2; c++)
                    if (j0 + j * 8 + 2 * t + c < len) mx = fmaxf(mx, s[j][2 * r + c]);
            float new_max = fmaxf(row_max[r], quad_max(mx));
            float rescale = expf(row_max[r] - new_max);
            row_max[r] = new_max;
            row_sum[r] *= rescale;
#pragma unroll
            for (int d = 0; d < MAX_HEAD_DIM / 8; d++) {
                o[d][2 * r] *= rescale;
                o[d][2 * r + 1] *= rescale;
            }
            for (int j = 0; j < ATT_KEYS / 8; j++)
                for (int c = 0; c < 2; c++) {
                    int key = j * 8 + 2 * t + c;
                    float p = j0 + key < len ? expf(s[j][2 * r + c] - new_max) : 0.0f;
                    row_sum[r] += p;
                    ps[warp][g + 8 * r][key] = tf32(p);
                }
        }
        __syncwarp();
#pragma unroll
        for (int kk = 0; kk < ATT_KEYS; kk += 8) {
            unsigned int af[4] = {ps[warp][g][kk + t], ps[warp][g + 8][kk + t],
                                  ps[warp][g][kk + t + 4], ps[warp][g + 8][kk + t + 4]};
#pragma unroll
            for (int d = 0; d < MAX_HEAD_DIM / 8; d++) {
                if (d < steps) {
                    unsigned int bf[2] = {vs[kk + t][d * 8 + g], vs[kk + t + 4][d * 8 + g]};
                    mma_tf32(o[d], af, bf);
                }
            }
        }
        __syncwarp();
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float total = quad_sum(row_sum[r]);
        int q = q0 + g + 8 * r;
        float* dst = out + (b * len + q) * dim + head;
#pragma unroll
        for (int d = 0; d < MAX_HEAD_DIM / 8; d++) {
            if (d < steps && q < len) {
                dst[d * 8 + 2 * t] = o[d][2 * r] / total;
                dst[d * 8 + 2 * t + 1] = o[d][2 * r + 1] / total;
            }
        }
    }
}

// out = a + b, b broadcast over a's leading axes (b has m elements, a suffix of a's shape).
extern "C" __global__ void add(const AddParams params, const float* a, const float* b, float* out) {
    const long long n = params.n, m = params.m;
    long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x +
                   (long long)blockIdx.y * gridDim.x * blockDim.x;
    if (id >= n) return;
    out[id] = a[id] + b[id % m];
}
