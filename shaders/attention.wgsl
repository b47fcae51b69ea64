// Multi-head self-attention on a fused projection qkv [B, T, 3·D]: one invocation per
// (window, head, query) streams over the keys with an online softmax (running max and sum),
// so no T×T score matrix is stored. Head width up to MAX_HEAD_DIM.

struct Params { batch: u32, len: u32, dim: u32, heads: u32, head_dim: u32, scale: f32, _p0: u32, _p1: u32 };

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const MAX_HEAD_DIM: u32 = 128u;

@compute @workgroup_size(256)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.batch * p.heads * p.len) { return; }
    let i = id % p.len;
    let h = (id / p.len) % p.heads;
    let b = id / (p.len * p.heads);
    let stride = 3u * p.dim;
    let q = (b * p.len + i) * stride + h * p.head_dim;
    var acc: array<f32, 128>;
    for (var d = 0u; d < p.head_dim; d++) { acc[d] = 0.0; }
    var m = -3.402823e38;
    var l = 0.0;
    for (var j = 0u; j < p.len; j++) {
        let k = (b * p.len + j) * stride + p.dim + h * p.head_dim;
        var s = 0.0;
        for (var d = 0u; d < p.head_dim; d++) { s += qkv[q + d] * qkv[k + d]; }
        s *= p.scale;
        let m_new = max(m, s);
        let rescale = exp(m - m_new);
        let e = exp(s - m_new);
        l = l * rescale + e;
        let v = k + p.dim;
        for (var d = 0u; d < p.head_dim; d++) { acc[d] = acc[d] * rescale + e * qkv[v + d]; }
        m = m_new;
    }
    let o = (b * p.len + i) * p.dim + h * p.head_dim;
    for (var d = 0u; d < p.head_dim; d++) { out[o + d] = acc[d] / l; }
}
