// Front-end ops after the STFT: bin selection + log, and per-window feature normalisation.

struct Params {
    rows: u32, width_in: u32, start: u32, width_out: u32,
    log_kind: u32, eps: f32, frames: u32, mode: u32,
    norm_eps: f32, batch: u32, below_max: f32, shift: f32,
    scale: f32, _p0: u32, _p1: u32, _p2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// out[row, f] = compress(x[row, start + f])
@compute @workgroup_size(256)
fn select_bins_log(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.rows * p.width_out) { return; }
    let row = id / p.width_out;
    let f = id % p.width_out;
    out[id] = compress(x[row * p.width_in + p.start + f], p.log_kind, p.eps);
}

// One invocation per (window, feature): statistics over the window's frames.
// mode 0: subtract the mean; mode 1: and divide by sqrt(var + norm_eps).
@compute @workgroup_size(256)
fn normalize_window(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.batch * p.width_in) { return; }
    let b = id / p.width_in;
    let f = id % p.width_in;
    let base = b * p.frames * p.width_in + f;
    // Two passes (the second sums deviations from the first mean, which are small): a plain
    // f32 sum over a few hundred frames of ~-60 dB drifts by ~1e-4 dB, the whole parity
    // budget (the CPU accumulates in f64, CUDA in double; WGSL has no f64).
    var sum = 0.0;
    for (var t = 0u; t < p.frames; t++) { sum += x[base + t * p.width_in]; }
    let rough = sum / f32(p.frames);
    var deviation = 0.0;
    for (var t = 0u; t < p.frames; t++) { deviation += x[base + t * p.width_in] - rough; }
    let mean = rough + deviation / f32(p.frames);
    var inv = 1.0;
    if (p.mode == 1u) {
        var ss = 0.0;
        for (var t = 0u; t < p.frames; t++) {
            let d = x[base + t * p.width_in] - mean;
            ss += d * d;
        }
        inv = 1.0 / sqrt(ss / f32(p.frames) + p.norm_eps);
    }
    for (var t = 0u; t < p.frames; t++) {
        let i = base + t * p.width_in;
        out[i] = (x[i] - mean) * inv;
    }
}

// A dynamic-range floor, one workgroup per window of `rows` values (frames × features): the
// window's maximum m, then out = (max(x, m − below_max) + shift) · scale (Whisper: 8, 4, 1/4).
@compute @workgroup_size(256)
fn normalize_range(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     lanes: Lanes) {
    let lid = lanes.index;
    let b = linear_group(wid, nwg);
    let valid = b < p.batch;
    let base = min(b, p.batch - 1u) * p.rows;
    var m = -3.402823e38;
    for (var i = lid; i < p.rows; i += WG) { m = max(m, x[base + i]); }
    let floor = workgroup_reduce(lanes, m, true) - p.below_max;
    if (valid) {
        for (var i = lid; i < p.rows; i += WG) { out[base + i] = (max(x[base + i], floor) + p.shift) * p.scale; }
    }
}
