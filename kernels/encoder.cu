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

// out[b, t, o] = activate(bias[o] + sum over k, c of x[b, t*stride + k - padding, c] * w[o, c, k]):
// a GEMM of (output steps x out channels) over r = k*C + c, 16x16 tiles, window b = blockIdx.z.
extern "C" __global__ void conv1d(const EncoderParams params, const float* x, const float* w,
                                  const float* bias, float* out) {
    const int len = params.len, channels = params.channels, out_channels = params.out_channels;
    const int kernel = params.kernel, stride = params.stride, padding = params.padding;
    const int out_len = params.out_len, has_bias = params.has_bias, act = params.act;
    const float slope = params.slope;
    __shared__ float ta[TILE][TILE];
    __shared__ float tb[TILE][TILE + 1];
    long long b = blockIdx.z;
    int t = blockIdx.y * TILE + threadIdx.y;
    int o = blockIdx.x * TILE + threadIdx.x;
    int red = kernel * channels;
    float acc = 0.0f;
    for (int s = 0; s < red; s += TILE) {
        int ra = s + threadIdx.x;
        float va = 0.0f;
        if (t < out_len && ra < red) {
            int src = t * stride + ra / channels - padding;
            if (src >= 0 && src < len) va = x[(b * len + src) * channels + ra % channels];
        }
        ta[threadIdx.y][threadIdx.x] = va;
        int rb = s + threadIdx.y;
        float vb = 0.0f;
        if (o < out_channels && rb < red)
            vb = w[((long long)o * channels + rb % channels) * kernel + rb / channels];
        tb[threadIdx.y][threadIdx.x] = vb;
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

// out = a + b, b broadcast over a's leading axes (b has m elements, a suffix of a's shape).
extern "C" __global__ void add(const AddParams params, const float* a, const float* b, float* out) {
    const long long n = params.n, m = params.m;
    long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x +
                   (long long)blockIdx.y * gridDim.x * blockDim.x;
    if (id >= n) return;
    out[id] = a[id] + b[id % m];
}
