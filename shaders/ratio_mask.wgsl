// A two-stem ratio mask applied to a complex spectrum: spec [.., 2] times
// (t² + eps/2) / (t² + o² + eps), t and o the stems' magnitude estimates (one per complex value).

struct Params { n: u32, eps: f32, _p0: u32, _p1: u32 };

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> spec: array<f32>;
@group(0) @binding(2) var<storage, read> target_est: array<f32>;
@group(0) @binding(3) var<storage, read> other_est: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn ratio_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let t = target_est[id];
    let o = other_est[id];
    let mask = (t * t + p.eps * 0.5) / (t * t + o * o + p.eps);
    out[2u * id] = spec[2u * id] * mask;
    out[2u * id + 1u] = spec[2u * id + 1u] * mask;
}
