// Multi-head self-attention on a fused projection qkv [B, T, 3·D] → out [B, T, D]. One
// workgroup of 64 invocations per (window, head, query): the scaled query sits in workgroup
// memory; keys go by in tiles of 64, each invocation scoring one key of the tile, then the
// tile's softmax terms update a running maximum and sum (online softmax) while each invocation
// accumulates two of the head's output values (head width ≤ 128). No T×T matrix is stored.

struct Params { batch: u32, len: u32, dim: u32, heads: u32, head_dim: u32, scale: f32, _p0: u32, _p1: u32 };

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const KEYS: u32 = 64u;
var<workgroup> query: array<f32, 128>;
var<workgroup> scores: array<f32, 64>;

@compute @workgroup_size(64)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let rows = p.batch * p.heads * p.len;
    let row = linear_group(wid, nwg);
    let r = min(row, rows - 1u);
    let i = r % p.len;
    let h = (r / p.len) % p.heads;
    let b = r / (p.len * p.heads);
    let stride = 3u * p.dim;
    let head = h * p.head_dim;
    for (var d = lid; d < p.head_dim; d += KEYS) { query[d] = qkv[(b * p.len + i) * stride + head + d] * p.scale; }
    workgroupBarrier();
    let d0 = lid;
    let d1 = lid + KEYS;
    var m = -3.402823e38;
    var l = 0.0;
    var acc0 = 0.0;
    var acc1 = 0.0;
    for (var j0 = 0u; j0 < p.len; j0 += KEYS) {
        let j = j0 + lid;
        var s = -3.402823e38;
        if (j < p.len) {
            let k = (b * p.len + j) * stride + p.dim + head;
            s = 0.0;
            for (var d = 0u; d < p.head_dim; d++) { s += query[d] * qkv[k + d]; }
        }
        scores[lid] = s;
        workgroupBarrier();
        let n = min(KEYS, p.len - j0);
        var tile_max = m;
        for (var t = 0u; t < n; t++) { tile_max = max(tile_max, scores[t]); }
        let rescale = exp(m - tile_max);
        l *= rescale;
        acc0 *= rescale;
        acc1 *= rescale;
        for (var t = 0u; t < n; t++) {
            let e = exp(scores[t] - tile_max);
            l += e;
            let v = (b * p.len + j0 + t) * stride + 2u * p.dim + head;
            if (d0 < p.head_dim) { acc0 += e * qkv[v + d0]; }
            if (d1 < p.head_dim) { acc1 += e * qkv[v + d1]; }
        }
        m = tile_max;
        workgroupBarrier();
    }
    if (row < rows) {
        let o = (b * p.len + i) * p.dim + head;
        if (d0 < p.head_dim) { out[o + d0] = acc0 / l; }
        if (d1 < p.head_dim) { out[o + d1] = acc1 / l; }
    }
}


// The same attention, key/value tiles shared: one workgroup of 64 invocations per (64 queries,
// head, window) = (wid.x, wid.y, wid.z), each invocation owning one query. Tiles of 16 keys
// and their values are loaded once into workgroup memory (neighbouring invocations read
// neighbouring values) and serve all 64 queries, where `attention` reads every key and value
// from storage once per query. Each invocation keeps its scaled query, its running maximum and
// sum, and its output row privately as vec4s (online softmax, no reductions between
// invocations). Head width: a multiple of 4, at most 128. The vec4s also keep each invocation's
// loop iterations low: lavapipe (Mesa's CPU driver) caps them, and a scalar version of this
// kernel went wrong there past ~450 keys; this one is right up to Whisper's 1500.
const TILE_KEYS: u32 = 16u;
var<workgroup> kt: array<array<vec4<f32>, 32>, 16>;
var<workgroup> vt: array<array<vec4<f32>, 32>, 16>;

@compute @workgroup_size(64)
fn attention_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wid.z;
    let head = wid.y * p.head_dim;
    let quads = p.head_dim / 4u;
    let i = wid.x * 64u + lid;
    let stride = 3u * p.dim;
    let base = b * p.len * stride;
    var q: array<vec4<f32>, 32>;
    var acc: array<vec4<f32>, 32>;
    let qa = base + min(i, p.len - 1u) * stride + head;
    for (var d = 0u; d < quads; d++) {
        let at = qa + 4u * d;
        q[d] = vec4<f32>(qkv[at], qkv[at + 1u], qkv[at + 2u], qkv[at + 3u]) * p.scale;
    }
    var m = -3.402823e38;
    var l = 0.0;
    for (var j0 = 0u; j0 < p.len; j0 += TILE_KEYS) {
        workgroupBarrier();
        for (var e = lid; e < TILE_KEYS * quads; e += 64u) {
            let key = e / quads;
            let d = e % quads;
            let at = base + min(j0 + key, p.len - 1u) * stride + head + 4u * d;
            let k = at + p.dim;
            let v = at + 2u * p.dim;
            kt[key][d] = vec4<f32>(qkv[k], qkv[k + 1u], qkv[k + 2u], qkv[k + 3u]);
            vt[key][d] = vec4<f32>(qkv[v], qkv[v + 1u], qkv[v + 2u], qkv[v + 3u]);
        }
        workgroupBarrier();
        let n = min(TILE_KEYS, p.len - j0);
        var s: array<f32, 16>;
        var tile_max = m;
        for (var t = 0u; t < n; t++) {
            var score = 0.0;
            for (var d = 0u; d < quads; d++) { score += dot(q[d], kt[t][d]); }
            s[t] = score;
            tile_max = max(tile_max, score);
        }
        let rescale = exp(m - tile_max);
        l *= rescale;
        for (var d = 0u; d < quads; d++) { acc[d] *= rescale; }
        for (var t = 0u; t < n; t++) {
            let e = exp(s[t] - tile_max);
            l += e;
            for (var d = 0u; d < quads; d++) { acc[d] = fma(vec4<f32>(e), vt[t][d], acc[d]); }
        }
        m = tile_max;
    }
    if (i < p.len) {
        let o = (b * p.len + i) * p.dim + head;
        for (var d = 0u; d < quads; d++) {
            let v = acc[d] / l;
            out[o + 4u * d] = v.x;
            out[o + 4u * d + 1u] = v.y;
            out[o + 4u * d + 2u] = v.z;
            out[o + 4u * d + 3u] = v.w;
        }
    }
}
