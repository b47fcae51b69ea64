// Framing + window + real FFT + |X|^power, fused. Output [B, frames, bins] (the lowest `bins`
// of n_fft/2 + 1), or with `complex` the spectrum itself, [B, frames, bins, 2] (real, imaginary).
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
