// The source separator's kernels: a 2-D transposed convolution (one thread per output element,
// gathering the input pixels whose taps land on it), channel concatenation, and around the
// U-Nets the ratio mask and the inverse STFT's overlap-add (the complex STFT and each frame's
// inverse FFT are frontend.cu's: `complex`, `irfft_frames`). Each takes the
// layout of its WGSL twin's `Params` (shaders/separator.wgsl, shaders/concat.wgsl).

struct ConvTransposeParams {  // shaders/separator.wgsl
    unsigned int n, c, h, w, o, kh, kw, sh, sw, crop_h, crop_w, ho, wo, has_bias, act;
    float slope;
};
struct ConcatParams {  // shaders/concat.wgsl
    unsigned int n, ca, cb, inner;
};
struct OverlapAddParams {  // shaders/overlap_add.wgsl
    unsigned int n, len, frames, n_fft, hop;
};
struct RatioMaskParams {  // shaders/ratio_mask.wgsl
    unsigned int n;
    float eps;
};

// out[b, o, y, x] = bias[o] + sum of x[b, c, iy, ix] * weight[c, o, ky, kx] over
// iy * sh + ky = y + crop_h and ix * sw + kx = x + crop_w (weight [C, O, KH, KW]).
extern "C" __global__ void conv_transpose2d(const ConvTransposeParams params, const float* x,
                                            const float* weight, const float* bias, float* out) {
    const long long n = params.n;
    const int c_in = params.c, h = params.h, w = params.w, o_ch = params.o, kh = params.kh;
    const int kw = params.kw, sh = params.sh, sw = params.sw, ho = params.ho, wo = params.wo;
    const int act = params.act;
    const float slope = params.slope;
    long long id = global_id();
    if (id >= n) return;
    const int ox = (int)(id % wo), oy = (int)((id / wo) % ho);
    const int o = (int)((id / ((long long)wo * ho)) % o_ch);
    const long long item = id / ((long long)wo * ho * o_ch);
    const int fy = oy + (int)params.crop_h, fx = ox + (int)params.crop_w;
    float acc = params.has_bias ? bias[o] : 0.0f;
    // Only the taps of the same phase as the full-output position reach it.
    for (int ky = fy % sh; ky < kh && ky <= fy; ky += sh) {
        const int iy = (fy - ky) / sh;
        if (iy >= h) continue;
        for (int kx = fx % sw; kx < kw && kx <= fx; kx += sw) {
            const int ix = (fx - kx) / sw;
            if (ix >= w) continue;
            for (int c = 0; c < c_in; c++) {
                acc += x[((item * c_in + c) * h + iy) * w + ix] *
                       weight[(((long long)c * o_ch + o) * kh + ky) * kw + kx];
            }
        }
    }
    out[id] = activate(acc, act, slope);
}

extern "C" __global__ void concat_channels(const ConcatParams params, const float* a,
                                           const float* b, float* out) {
    const long long n = params.n, ca = params.ca, cb = params.cb, inner = params.inner;
    long long id = global_id();
    if (id >= n) return;
    const long long per_item = (ca + cb) * inner, item = id / per_item, r = id % per_item;
    out[id] = r < ca * inner ? a[item * ca * inner + r] : b[item * cb * inner + r - ca * inner];
}

extern "C" __global__ void mul(const ConcatParams params, const float* a, const float* b,
                               float* out) {
    const long long n = params.n;
    long long id = global_id();
    if (id >= n) return;
    out[id] = a[id] * b[id];
}

// spec [.., 2] times the two-stem ratio mask (t² + eps/2) / (t² + o² + eps).
extern "C" __global__ void ratio_mask(const RatioMaskParams params, const float* spec,
                                      const float* target, const float* other, float* out) {
    long long id = global_id();
    if (id >= (long long)params.n) return;
    float t = target[id], o = other[id];
    float mask = (t * t + params.eps * 0.5f) / (t * t + o * o + params.eps);
    out[2 * id] = spec[2 * id] * mask;
    out[2 * id + 1] = spec[2 * id + 1] * mask;
}

// [B, T, n_fft] windowed frames → [B, (T − 1)·hop + n_fft]: one thread per output sample,
// summing the frames that cover it.
extern "C" __global__ void overlap_add(const OverlapAddParams params, const float* framed,
                                       float* out) {
    long long id = global_id();
    if (id >= (long long)params.n) return;
    const int len = params.len, frames = params.frames, n_fft = params.n_fft, hop = params.hop;
    long long b = id / len;
    int i = (int)(id % len);
    int first = i + 1 > n_fft ? (i + 1 - n_fft + hop - 1) / hop : 0;
    int last = i / hop < frames - 1 ? i / hop : frames - 1;
    float acc = 0.0f;
    for (int t = first; t <= last; t++) {
        acc += framed[(b * frames + t) * n_fft + i - t * hop];
    }
    out[id] = acc;
}
