// Tiled GEMM with a fused epilogue, for the filterbank projection (+ log), the DCT and linear
// layers (+ bias + activation): out[M, N] = epilogue(A[M, K] · B), B stored [K, N] or, when
// `b_trans` = 1, [N, K] (PyTorch linear weights). 16×16 output tile per workgroup, K in
// 16-wide slabs staged through workgroup memory.

struct Params {
    m: u32, n: u32, k: u32, b_trans: u32,
    has_bias: u32, act: u32, slope: f32, log_kind: u32,
    eps: f32, _p0: u32, _p1: u32, _p2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const T: u32 = 16u;
var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let row = wid.y * T + l.y;
    let col = wid.x * T + l.x;
    var acc = 0.0;
    let slabs = (p.k + T - 1u) / T;
    for (var s = 0u; s < slabs; s++) {
        let ka = s * T + l.x;
        ta[l.y][l.x] = select(0.0, a[row * p.k + ka], row < p.m && ka < p.k);
        let kb = s * T + l.y;
        var vb = 0.0;
        if (col < p.n && kb < p.k) {
            vb = select(b[kb * p.n + col], b[col * p.k + kb], p.b_trans == 1u);
        }
        tb[l.y][l.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < T; i++) {
            acc += ta[l.y][i] * tb[i][l.x];
        }
        workgroupBarrier();
    }
    if (row < p.m && col < p.n) {
        var v = acc;
        if (p.has_bias == 1u) { v += bias[col]; }
        v = activate(v, p.act, p.slope);
        out[row * p.n + col] = compress(v, p.log_kind, p.eps);
    }
}
