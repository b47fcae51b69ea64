// Inverse STFT, first step: each frame's inverse real FFT times the window, [B, T, bins, 2] →
// [B, T, n_fft] (bins above `bins` are zero; the overlap-add is `overlap_add.wgsl`).
//
// One workgroup per frame. The n-point real inverse is an n/2-point complex one: from the
// spectrum X, E[k] = (X[k] + conj X[n/2−k]) / 2 and O[k] = (X[k] − conj X[n/2−k]) e^{2πik/n} / 2
// are the transforms of the even and odd samples, and z = IDFT(E + i·O) holds
// x[2m] + i·x[2m+1]. The inverse runs as conj(FFT(conj(·))) with the radix-2 butterflies and
// the host's twiddle table of stft.wgsl. n_fft is a power of two ≤ 4096.

struct Params {
    batch: u32, frames: u32, bins: u32, n_fft: u32,
    half: u32, log2_half: u32, _p0: u32, _p1: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> spec: array<f32>;
@group(0) @binding(2) var<storage, read> window: array<f32>;
@group(0) @binding(3) var<storage, read> twiddle: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> buf: array<vec2<f32>, 2048>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Bin k of frame `row`: zero above `bins`; the DC and Nyquist bins taken as real, as a real
// inverse FFT (PyTorch's irfft) does.
fn bin(row: u32, k: u32) -> vec2<f32> {
    if (k >= p.bins) { return vec2<f32>(0.0, 0.0); }
    let i = (row * p.bins + k) * 2u;
    var x = vec2<f32>(spec[i], spec[i + 1u]);
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
    for (var s = 1u; s <= p.log2_half; s++) {
        let span = 1u << s;
        let h = span >> 1u;
        for (var q = lid; q < half / 2u; q += WG) {
            let j = q % h;
            let k = (q / h) * span + j;
            let w = twiddle[j << (p.log2_half + 1u - s)];
            let a = buf[k];
            let c = cmul(w, buf[k + h]);
            buf[k] = a + c;
            buf[k + h] = a - c;
        }
        workgroupBarrier();
    }
    if (!in_range) { return; }
    let scale = 1.0 / f32(half);
    for (var m = lid; m < half; m += WG) {
        let z = buf[m];                       // conj again: x[2m] = Re, x[2m+1] = −Im
        let o = row * p.n_fft + 2u * m;
        out[o] = z.x * scale * window[2u * m];
        out[o + 1u] = -z.y * scale * window[2u * m + 1u];
    }
}
