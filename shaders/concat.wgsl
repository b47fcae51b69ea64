// Two [B, C, ...] tensors concatenated along the channels (a's first), and multiplied
// elementwise (`mul`, the same shape).

struct Params { n: u32, ca: u32, cb: u32, inner: u32 };

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn concat_channels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let per_item = (p.ca + p.cb) * p.inner;
    let item = id / per_item;
    let r = id % per_item;
    if (r < p.ca * p.inner) {
        out[id] = a[item * p.ca * p.inner + r];
    } else {
        out[id] = b[item * p.cb * p.inner + r - p.ca * p.inner];
    }
}

@compute @workgroup_size(256)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    out[id] = a[id] * b[id];
}
