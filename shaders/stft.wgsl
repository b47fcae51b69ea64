// Framing + window + real FFT + |X|^power, fused. Output [B, frames, bins] (the lowest `bins`
// of n_fft/2 + 1), or with `complex` the spectrum itself, [B, frames, bins, 2] (real, imaginary).
// `irfft_frames`, the inverse STFT's first step, shares the radix-2 FFT (`fft_in_place`).
//
// `stft_radix2`: one workgroup per frame. An n-point real FFT is computed as an n/2-point
// complex FFT of z[m] = x[2m] + i·x[2m+1] (in-place radix-2 DIT in workgroup memory, loaded in
// bit-reversed order), then split into the real spectrum. n_fft must be a power of two ≤ 4096.
// `stft_dft`: any n_fft, one invocation per output bin, direct DFT with exact angle reduction.
// Twiddles come from a host table, twiddle[m] = e^{-2πim/n_fft} rounded from f64: Vulkan only
// promises 2^-11 absolute for a shader's sin/cos, so a driver may use rough approximations.

struct Params {
    batch: u32, len: u32, frames: u32, n_fft: u32,
    hop: u32, pad: u32, bins: u32, half: u32,
    log2_half: u32, power: f32, complex: u32, _p1: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> signal: array<f32>;
@group(0) @binding(2) var<storage, read> window: array<f32>;
@group(0) @binding(3) var<storage, read> twiddle: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> buf: array<vec2<f32>, 2048>;

// Sample `i` of the padded frame source for batch item `b` (reflect padding).
fn sample(b: u32, i: i32) -> f32 {
    let n = i32(p.len);
    var j = i;
    if (j < 0) { j = -j; }
    if (j >= n) { j = 2 * (n - 1) - j; }
    return signal[b * p.len + u32(j)];
}

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Bin k of output row `row`: |X|^power, or X itself.
fn store(row: u32, k: u32, x: vec2<f32>) {
    if (k >= p.bins) { return; }
    if (p.complex != 0u) {
        let i = (row * p.bins + k) * 2u;
        out[i] = x.x;
        out[i + 1u] = x.y;
    } else {
        out[row * p.bins + k] = magnitude_power(x);
    }
}

// The in-place radix-2 DIT butterflies over buf[0 .. half], loaded in bit-reversed order;
// every stage ends on a barrier. Called from uniform control flow.
fn fft_in_place(lid: u32) {
    let half = p.half;
    for (var s = 1u; s <= p.log2_half; s++) {
        let span = 1u << s;
        let h = span >> 1u;
        for (var q = lid; q < half / 2u; q += WG) {
            let j = q % h;
            let k = (q / h) * span + j;
            let w = twiddle[j << (p.log2_half + 1u - s)];   // e^{-2πij/span}
            let a = buf[k];
            let c = cmul(w, buf[k + h]);
            buf[k] = a + c;
            buf[k + h] = a - c;
        }
        workgroupBarrier();
    }
}

fn magnitude_power(z: vec2<f32>) -> f32 {
    let m2 = z.x * z.x + z.y * z.y;
    if (p.power == 2.0) { return m2; }
    if (p.power == 1.0) { return sqrt(m2); }
    return pow(m2, p.power * 0.5);
}

@compute @workgroup_size(256)
fn stft_radix2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let row = linear_group(wid, nwg);       // uniform across the workgroup
    let in_range = row < p.batch * p.frames;
    let b = min(row / p.frames, p.batch - 1u);
    let t = row % p.frames;
    let start = i32(t * p.hop) - i32(p.pad);
    let half = p.half;
    // load z[m] = x[2m] + i x[2m+1] at bit-reversed positions
    for (var m = lid; m < half; m += WG) {
        let r = reverseBits(m) >> (32u - p.log2_half);
        let i0 = 2u * m;
        buf[r] = vec2<f32>(sample(b, start + i32(i0)) * window[i0],
                           sample(b, start + i32(i0) + 1) * window[i0 + 1u]);
    }
    workgroupBarrier();
    fft_in_place(lid);
    if (!in_range) { return; }
    // split: X[k] = E[k] + e^{-2πik/n} O[k]
    for (var k = lid; k <= half; k += WG) {
        let zk = buf[k % half];
        let zc = buf[(half - k) % half];
        let zc_conj = vec2<f32>(zc.x, -zc.y);
        let e = (zk + zc_conj) * 0.5;
        let d = (zk - zc_conj) * 0.5;
        let o = vec2<f32>(d.y, -d.x);          // d / i
        let x = e + cmul(twiddle[k], o);
        store(row, k, x);
    }
}

@compute @workgroup_size(256)
fn stft_dft(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.batch * p.frames * p.bins) { return; }
    let k = id % p.bins;
    let row = id / p.bins;
    let b = row / p.frames;
    let t = row % p.frames;
    let start = i32(t * p.hop) - i32(p.pad);
    var acc = vec2<f32>(0.0, 0.0);
    for (var n = 0u; n < p.n_fft; n++) {
        let v = sample(b, start + i32(n)) * window[n];
        acc += v * twiddle[(k * n) % p.n_fft];
    }
    store(row, k, acc);
}

// Inverse STFT, first step: each frame's inverse real FFT times the window, [B, T, bins, 2]
// (read through `signal`) → [B, T, n_fft]; bins above `bins` are zero, and the overlap-add is
// overlap_add.wgsl's. One workgroup per frame. The n-point real inverse is an n/2-point complex
// one: from the spectrum X, E[k] = (X[k] + conj X[n/2−k]) / 2 and
// O[k] = (X[k] − conj X[n/2−k]) e^{2πik/n} / 2 are the transforms of the even and odd samples,
// and z = IDFT(E + i·O) holds x[2m] + i·x[2m+1]; the inverse runs as conj(FFT(conj(·))).
// Params used: batch, frames, bins, n_fft, half, log2_half.

// Bin k of frame `row`: zero above `bins`; the DC and Nyquist bins taken as real, as a real
// inverse FFT (PyTorch's irfft) does.
fn bin(row: u32, k: u32) -> vec2<f32> {
    if (k >= p.bins) { return vec2<f32>(0.0, 0.0); }
    let i = (row * p.bins + k) * 2u;
    var x = vec2<f32>(signal[i], signal[i + 1u]);
    if (k == 0u || k == p.half) { x.y = 0.0; }
    return x;
}

@compute @workgroup_size(256)
fn irfft_frames(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = linear_group(wid, nwg);       // uniform across the workgroup
    let in_range = row < p.batch * p.frames;
    let r = min(row, p.batch * p.frames - 1u);
    let half = p.half;
    for (var k = lid; k < half; k += WG) {
        let a = bin(r, k);
        let c = bin(r, half - k);
        let cc = vec2<f32>(c.x, -c.y);
        let e = (a + cc) * 0.5;
        let w = twiddle[k];                   // e^{-2πik/n}; its conjugate turns O back
        let o = cmul((a - cc) * 0.5, vec2<f32>(w.x, -w.y));
        let zf = e + vec2<f32>(-o.y, o.x);    // E + i·O
        let rev = reverseBits(k) >> (32u - p.log2_half);
        buf[rev] = vec2<f32>(zf.x, -zf.y);    // conjugated: the forward FFT then inverts
    }
    workgroupBarrier();
    fft_in_place(lid);
    if (!in_range) { return; }
    let scale = 1.0 / f32(half);
    for (var m = lid; m < half; m += WG) {
        let z = buf[m];                       // conj again: x[2m] = Re, x[2m+1] = −Im
        let o = row * p.n_fft + 2u * m;
        out[o] = z.x * scale * window[2u * m];
        out[o + 1u] = -z.y * scale * window[2u * m + 1u];
    }
}
