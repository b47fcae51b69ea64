// Front-end kernels: fused STFT power spectrum, bin selection + log, normalisation.
// Compiled at run time with NVRTC (see src/backend/cuda/); layouts as in src/backend/mod.rs.
// Each takes its parameter struct (the layout of the WGSL kernel's `Params`, filled by
// src/backend/gpu/), then its inputs, then its output.

struct StftParams {  // shaders/stft.wgsl
    unsigned int batch, len, frames, n_fft, hop, pad, bins, half, log2_half;
    float power;
    unsigned int complex;  // write [.., bins, 2] (real, imaginary) instead of |X|^power
};
struct FrontendParams {  // shaders/frontend.wgsl
    unsigned int rows, width_in, start, width_out, log_kind;
    float eps;
    unsigned int frames, mode;
    float norm_eps;
    unsigned int batch;
    float below_max, shift, scale;
};
struct GlobalParams {  // shaders/frontend_global.wgsl
    unsigned int n, width;
};

#define TAU 6.283185307179586f

__device__ __forceinline__ float reflect_sample(const float* signal, int len, int b, int i) {
    if (i < 0) i = -i;
    if (i >= len) i = 2 * (len - 1) - i;
    return signal[(long long)b * len + i];
}

__device__ __forceinline__ float magnitude_power(float re, float im, float power) {
    float m2 = re * re + im * im;
    if (power == 2.0f) return m2;
    if (power == 1.0f) return sqrtf(m2);
    return powf(m2, power * 0.5f);
}

// Bin k (of the lowest `bins`) of output row `row`: |X|^power, or X itself.
__device__ __forceinline__ void store_bin(const StftParams& p, float* out, long long row, int k,
                                          float re, float im) {
    if (k >= (int)p.bins) return;
    if (p.complex) {
        out[(row * p.bins + k) * 2] = re;
        out[(row * p.bins + k) * 2 + 1] = im;
    } else {
        out[row * p.bins + k] = magnitude_power(re, im, p.power);
    }
}

// The in-place radix-2 DIT butterflies over buf[0 .. half], loaded in bit-reversed order; every
// stage ends on a barrier, so the whole block calls it.
__device__ __forceinline__ void fft_in_place(float2* buf, int half, int log2_half) {
    for (int s = 1; s <= log2_half; s++) {
        int span = 1 << s;
        int h = span >> 1;
        for (int q = threadIdx.x; q < half / 2; q += blockDim.x) {
            int j = q % h;
            int k = (q / h) * span + j;
            float sn, cs;
            sincospif(-2.0f * (float)j / (float)span, &sn, &cs);
            float2 a = buf[k];
            float2 c = buf[k + h];
            float2 wc = make_float2(cs * c.x - sn * c.y, cs * c.y + sn * c.x);
            buf[k] = make_float2(a.x + wc.x, a.y + wc.y);
            buf[k + h] = make_float2(a.x - wc.x, a.y - wc.y);
        }
        __syncthreads();
    }
}

// One block per frame. An n-point real FFT as an n/2-point complex radix-2 DIT FFT of
// z[m] = x[2m] + i x[2m+1] in shared memory (bit-reversed load), then the even/odd split.
// n_fft is a power of two, 4..8192 (dynamic shared memory: n_fft/2 float2).
extern "C" __global__ void stft_radix2(const StftParams params, const float* signal,
                                       const float* window, float* out) {
    const int batch = params.batch, len = params.len, frames = params.frames;
    const int n_fft = params.n_fft, hop = params.hop, pad = params.pad;
    const int log2_half = params.log2_half;
    extern __shared__ float2 buf[];
    long long row = blockIdx.x + (long long)blockIdx.y * gridDim.x;
    if (row >= (long long)batch * frames) return;  // whole block exits together
    int b = (int)(row / frames);
    int t = (int)(row % frames);
    int start = t * hop - pad;
    int half = n_fft / 2;
    for (int m = threadIdx.x; m < half; m += blockDim.x) {
        int r = __brev(m) >> (32 - log2_half);
        int i0 = 2 * m;
        buf[r] = make_float2(reflect_sample(signal, len, b, start + i0) * window[i0],
                             reflect_sample(signal, len, b, start + i0 + 1) * window[i0 + 1]);
    }
    __syncthreads();
    fft_in_place(buf, half, log2_half);
    for (int k = threadIdx.x; k <= half; k += blockDim.x) {
        float2 zk = buf[k % half];
        float2 zc = buf[(half - k) % half];
        float er = 0.5f * (zk.x + zc.x), ei = 0.5f * (zk.y - zc.y);
        float dr = 0.5f * (zk.x - zc.x), di = 0.5f * (zk.y + zc.y);
        float orr = di, oi = -dr;  // d / i
        float sn, cs;
        sincospif(-2.0f * (float)k / (float)n_fft, &sn, &cs);
        float xr = er + cs * orr - sn * oi;
        float xi = ei + cs * oi + sn * orr;
        store_bin(params, out, row, k, xr, xi);
    }
}

// Any n_fft: one thread per output bin, direct DFT with exact integer angle reduction.
extern "C" __global__ void stft_dft(const StftParams params, const float* signal,
                                    const float* window, float* out) {
    const int batch = params.batch, len = params.len, frames = params.frames;
    const int n_fft = params.n_fft, hop = params.hop, pad = params.pad, bins = params.bins;
    long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x +
                   (long long)blockIdx.y * gridDim.x * blockDim.x;
    if (id >= (long long)batch * frames * bins) return;
    int k = (int)(id % bins);
    long long row = id / bins;
    int b = (int)(row / frames);
    int t = (int)(row % frames);
    int start = t * hop - pad;
    float re = 0.0f, im = 0.0f;
    for (int n = 0; n < n_fft; n++) {
        float v = reflect_sample(signal, len, b, start + n) * window[n];
        float sn, cs;
        sincospif(-2.0f * (float)((long long)k * n % n_fft) / (float)n_fft, &sn, &cs);
        re += v * cs;
        im += v * sn;
    }
    store_bin(params, out, row, k, re, im);
}

extern "C" __global__ void select_bins_log(const FrontendParams params, const float* x,
                                           float* out) {
    const long long rows = params.rows;
    const int width_in = params.width_in, start = params.start, width_out = params.width_out;
    const int log_kind = params.log_kind;
    const float eps = params.eps;
    long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x +
                   (long long)blockIdx.y * gridDim.x * blockDim.x;
    if (id >= rows * width_out) return;
    long long row = id / width_out;
    int f = (int)(id % width_out);
    out[id] = compress(x[row * width_in + start + f], log_kind, eps);
}

// One thread per (window, feature): mode 0 subtracts the mean, 1 also divides by
// sqrt(var + eps). The statistics accumulate in double, as on the CPU backend: summing a few
// hundred frames of ~-60 dB in float drifts by ~1e-4 dB, the whole parity budget.
extern "C" __global__ void normalize_window(const FrontendParams params, const float* x,
                                            float* out) {
    const int batch = params.batch, frames = params.frames, feats = params.width_in;
    const int mode = params.mode;
    const float eps = params.norm_eps;
    long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (id >= (long long)batch * feats) return;
    int b = (int)(id / feats);
    int f = (int)(id % feats);
    long long base = (long long)b * frames * feats + f;
    double sum = 0.0;
    for (int t = 0; t < frames; t++) sum += (double)x[base + (long long)t * feats];
    double mean = sum / frames;
    double inv = 1.0;
    if (mode == 1) {
        double ss = 0.0;
        for (int t = 0; t < frames; t++) {
            double d = (double)x[base + (long long)t * feats] - mean;
            ss += d * d;
        }
        inv = 1.0 / sqrt(ss / frames + (double)eps);
    }
    for (int t = 0; t < frames; t++) {
        long long i = base + (long long)t * feats;
        out[i] = (float)(((double)x[i] - mean) * inv);
    }
}

extern "C" __global__ void normalize_global(const GlobalParams params, const float* x,
                                            const float* mean, const float* std_dev, float* out) {
    const long long n = params.n;
    const int width = params.width;
    long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x +
                   (long long)blockIdx.y * gridDim.x * blockDim.x;
    if (id >= n) return;
    int f = (int)(id % width);
    out[id] = (x[id] - mean[f]) / std_dev[f];
}

// A dynamic-range floor, one 256-thread block per window of `per_window` values (frames x
// features, in `rows`): the window's maximum m, then out = (max(x, m - below_max) + shift) *
// scale (Whisper's step: 8, 4, 1/4).
extern "C" __global__ void normalize_range(const FrontendParams params, const float* x,
                                             float* out) {
    const long long batch = params.batch;
    const int per_window = params.rows;
    __shared__ float partial[256];
    long long b = blockIdx.x + (long long)blockIdx.y * gridDim.x;
    if (b >= batch) return;  // whole block: the barriers below stay uniform
    const float* w = x + b * per_window;
    float m = -3.402823e38f;
    for (int i = threadIdx.x; i < per_window; i += blockDim.x) m = fmaxf(m, w[i]);
    partial[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + s]);
        __syncthreads();
    }
    float floor_value = partial[0] - params.below_max;
    for (int i = threadIdx.x; i < per_window; i += blockDim.x)
        out[b * per_window + i] = (fmaxf(w[i], floor_value) + params.shift) * params.scale;
}

// Bin k of frame `row` for the inverse: zero above `bins`, DC and Nyquist taken as real.
__device__ __forceinline__ float2 istft_bin(const StftParams& p, const float* spec, long long row,
                                            int k) {
    if (k >= (int)p.bins) return make_float2(0.0f, 0.0f);
    float2 x = make_float2(spec[(row * p.bins + k) * 2], spec[(row * p.bins + k) * 2 + 1]);
    if (k == 0 || k == (int)p.half) x.y = 0.0f;
    return x;
}

// Each frame's inverse real FFT times the window, [B, T, bins, 2] → [B, T, n_fft]: one block
// per frame, the n/2-point complex inverse of E + i·O (the even and odd samples' transforms,
// as in shaders/stft.wgsl) run as conj(FFT(conj(·))) in shared memory (n_fft/2 float2).
extern "C" __global__ void irfft_frames(const StftParams params, const float* spec,
                                        const float* window, float* out) {
    const int half = params.half, log2_half = params.log2_half, n_fft = params.n_fft;
    extern __shared__ float2 buf[];
    long long row = blockIdx.x + (long long)blockIdx.y * gridDim.x;
    if (row >= (long long)params.batch * params.frames) return;  // whole block exits together
    for (int k = threadIdx.x; k < half; k += blockDim.x) {
        float2 a = istft_bin(params, spec, row, k);
        float2 c = istft_bin(params, spec, row, half - k);
        float er = 0.5f * (a.x + c.x), ei = 0.5f * (a.y - c.y);
        float dr = 0.5f * (a.x - c.x), di = 0.5f * (a.y + c.y);
        float sn, cs;
        sincospif(2.0f * (float)k / (float)n_fft, &sn, &cs);  // e^{+2πik/n}
        float orr = dr * cs - di * sn, oi = dr * sn + di * cs;
        // E + i·O, conjugated so that the forward butterflies invert.
        buf[__brev(k) >> (32 - log2_half)] = make_float2(er - oi, -(ei + orr));
    }
    __syncthreads();
    fft_in_place(buf, half, log2_half);
    const float scale = 1.0f / (float)half;
    for (int m = threadIdx.x; m < half; m += blockDim.x) {
        float2 z = buf[m];
        out[row * n_fft + 2 * m] = z.x * scale * window[2 * m];
        out[row * n_fft + 2 * m + 1] = -z.y * scale * window[2 * m + 1];
    }
}
