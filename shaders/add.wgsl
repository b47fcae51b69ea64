// out = a + b with b broadcast over a's leading axes (b's shape a suffix of a's).

struct Params { n: u32, m: u32, _p0: u32, _p1: u32 };

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    out[id] = a[id] + b[id % p.m];
}
