// Per-channel affine + activation on [B, C, inner] (an inference batch norm that could not be
// folded into a convolution).

struct Params { n: u32, channels: u32, inner: u32, act: u32, slope: f32, _p0: u32, _p1: u32, _p2: u32 };

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> shift: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn channel_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let c = (id / p.inner) % p.channels;
    out[id] = activate(x[id] * scale[c] + shift[c], p.act, p.slope);
}
