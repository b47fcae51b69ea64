// The source separator's ops: a 2-D transposed convolution (one thread per output element,
// gathering the input pixels whose taps land on it) and channel concatenation.

struct Params {
    n: u32, c: u32, h: u32, w: u32, o: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, crop_h: u32, crop_w: u32, ho: u32, wo: u32, has_bias: u32, act: u32, slope: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// out[b, o, y, x] = bias[o] + Σ x[b, c, iy, ix] · weight[c, o, ky, kx] over iy·sh + ky = y + crop_h
// and ix·sw + kx = x + crop_w (weight [C, O, KH, KW], PyTorch's ConvTranspose2d layout).
@compute @workgroup_size(256)
fn conv_transpose2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let ox = id % p.wo;
    let oy = (id / p.wo) % p.ho;
    let o = (id / (p.wo * p.ho)) % p.o;
    let item = id / (p.wo * p.ho * p.o);
    let fy = oy + p.crop_h;
    let fx = ox + p.crop_w;
    var acc = 0.0;
    if (p.has_bias != 0u) { acc = bias[o]; }
    // Only the taps of the same phase as the full-output position reach it.
    for (var ky = fy % p.sh; ky < p.kh && ky <= fy; ky += p.sh) {
        let iy = (fy - ky) / p.sh;
        if (iy >= p.h) { continue; }
        for (var kx = fx % p.sw; kx < p.kw && kx <= fx; kx += p.sw) {
            let ix = (fx - kx) / p.sw;
            if (ix >= p.w) { continue; }
            for (var c = 0u; c < p.c; c++) {
                let xi = ((item * p.c + c) * p.h + iy) * p.w + ix;
                let wi = ((c * p.o + o) * p.kh + ky) * p.kw + kx;
                acc += x[xi] * weight[wi];
            }
        }
    }
    out[id] = activate(acc, p.act, p.slope);
}
