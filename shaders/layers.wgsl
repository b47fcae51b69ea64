// Classifier ops other than convolution and GEMM: per-channel affine (unfolded batch norm),
// max-feature-map, max-pooling, global pooling, calibrated sigmoid, softmax.

struct Params {
    n: u32, channels: u32, inner: u32, h: u32,
    w: u32, ho: u32, wo: u32, kh: u32,
    kw: u32, sh: u32, sw: u32, ph: u32,
    pw: u32, act: u32, slope: f32, mode: u32,
    scale: f32, shift: f32, classes: u32, _p0: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// n = B·C/2·inner outputs; channels = C (input)
@compute @workgroup_size(256)
fn mfm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let half = (p.channels / 2u) * p.inner;
    let item = id / half;
    let r = id % half;
    let base = item * 2u * half;
    out[id] = max(x[base + r], x[base + half + r]);
}

// n = B·C·Ho·Wo outputs; windows clipped to the input (padding acts as -inf)
@compute @workgroup_size(256)
fn max_pool2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let plane = id / (p.ho * p.wo);
    let r = id % (p.ho * p.wo);
    let oh = r / p.wo;
    let ow = r % p.wo;
    let base = plane * p.h * p.w;
    var m = -3.402823e38;
    for (var i = 0u; i < p.kh; i++) {
        let ih = i32(oh * p.sh + i) - i32(p.ph);
        if (ih < 0 || ih >= i32(p.h)) { continue; }
        for (var j = 0u; j < p.kw; j++) {
            let iw = i32(ow * p.sw + j) - i32(p.pw);
            if (iw >= 0 && iw < i32(p.w)) {
                m = max(m, x[base + u32(ih) * p.w + u32(iw)]);
            }
        }
    }
    out[id] = m;
}

// one workgroup per (item, channel) plane; mode 0 = average, 1 = max

@compute @workgroup_size(256)
fn global_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               lanes: Lanes) {
    let lid = lanes.index;
    let plane = linear_group(wid, nwg);
    let valid = plane < p.n;
    let base = min(plane, p.n - 1u) * p.inner;
    var acc = select(0.0, -3.402823e38, p.mode == 1u);
    for (var i = lid; i < p.inner; i += WG) {
        let v = x[base + i];
        acc = select(acc + v, max(acc, v), p.mode == 1u);
    }
    let total = workgroup_reduce(lanes, acc, p.mode == 1u);
    if (lid == 0u && valid) {
        out[plane] = select(total / f32(p.inner), total, p.mode == 1u);
    }
}

// sigmoid(scale · x + shift), numerically safe for large |x|
@compute @workgroup_size(256)
fn sigmoid(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let z = p.scale * x[id] + p.shift;
    let e = exp(-abs(z));
    out[id] = select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
}

// one invocation per row of `classes` values
@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let row = linear_id(wid, nwg, lid);
    if (row >= p.n) { return; }
    let base = row * p.classes;
    var m = -3.402823e38;
    for (var i = 0u; i < p.classes; i++) { m = max(m, x[base + i]); }
    var s = 0.0;
    for (var i = 0u; i < p.classes; i++) { s += exp(x[base + i] - m); }
    for (var i = 0u; i < p.classes; i++) { out[base + i] = exp(x[base + i] - m) / s; }
}
