// Encoder kernels with four bindings (input, weight or gain, bias, output): channels-last 1-D
// convolution as an implicit GEMM with bias and activation fused, and layer normalisation.

struct Params {
    len: u32, channels: u32, out_channels: u32, kernel: u32,
    stride: u32, padding: u32, out_len: u32, has_bias: u32,
    act: u32, slope: f32, rows: u32, dim: u32,
    eps: f32, _p0: u32, _p1: u32, _p2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const T: u32 = 16u;
var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 16>, 16>;

// out[b, t, o] = activate(bias[o] + Σ_{k, c} x[b, t·stride + k − padding, c] · w[o, c, k]):
// a GEMM of (output steps × out channels) over k·C + c, 16×16 tiles, window b = wid.z.
@compute @workgroup_size(16, 16)
fn conv1d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let b = wid.z;
    let t = wid.y * T + l.y;
    let o = wid.x * T + l.x;
    let red = p.kernel * p.channels;
    var acc = 0.0;
    for (var s = 0u; s < red; s += T) {
        let ra = s + l.x;
        var va = 0.0;
        if (t < p.out_len && ra < red) {
            let src = i32(t * p.stride + ra / p.channels) - i32(p.padding);
            if (src >= 0 && src < i32(p.len)) {
                va = x[(b * p.len + u32(src)) * p.channels + ra % p.channels];
            }
        }
        ta[l.y][l.x] = va;
        let rb = s + l.y;
        var vb = 0.0;
        if (o < p.out_channels && rb < red) {
            vb = w[(o * p.channels + rb % p.channels) * p.kernel + rb / p.channels];
        }
        tb[l.y][l.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < T; i++) {
            acc += ta[l.y][i] * tb[i][l.x];
        }
        workgroupBarrier();
    }
    if (t < p.out_len && o < p.out_channels) {
        var v = acc;
        if (p.has_bias == 1u) { v += bias[o]; }
        out[(b * p.out_len + t) * p.out_channels + o] = activate(v, p.act, p.slope);
    }
}

// One workgroup per row of `dim` values: mean, then variance about it (two passes), then
// (x − mean) / sqrt(var + eps) · gamma + beta. gamma is bound as `w`, beta as `bias`.
@compute @workgroup_size(256)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              lanes: Lanes) {
    let lid = lanes.index;
    let row = linear_group(wid, nwg);
    let valid = row < p.rows;
    let base = min(row, p.rows - 1u) * p.dim;
    var s = 0.0;
    for (var i = lid; i < p.dim; i += WG) { s += x[base + i]; }
    let mean = workgroup_reduce(lanes, s, false) / f32(p.dim);
    var q = 0.0;
    for (var i = lid; i < p.dim; i += WG) {
        let d = x[base + i] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(workgroup_reduce(lanes, q, false) / f32(p.dim) + p.eps);
    if (valid) {
        for (var i = lid; i < p.dim; i += WG) {
            out[base + i] = (x[base + i] - mean) * inv * w[i] + bias[i];
        }
    }
}
