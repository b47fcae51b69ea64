// Tiled GEMM with a fused epilogue, for the filterbank projection (+ log), the DCT and linear
// layers (+ bias + activation, + a residual): out[M, N] = epilogue(A[M, K] · B), B stored
// [K, N] or, when
// `b_trans` = 1, [N, K] (PyTorch linear weights). 16×16 output tile per workgroup, K in
// 16-wide slabs staged through workgroup memory as `Stage` values: f32, or f16 in the module's
// f16 build (`matmul_f16`, `matmul_rb_f16`: half the workgroup memory, inputs rounded to f16's
// 11 significant bits, as TF32 rounds them, within f16's range; the products and sums stay
// f32). The backend defines `Stage`, `STAGE_ROW` and `stage()` before this source.

struct Params {
    m: u32, n: u32, k: u32, b_trans: u32,
    has_bias: u32, act: u32, slope: f32, log_kind: u32,
    eps: f32, has_residual: u32, _p1: u32, _p2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// The epilogue of both kernels: bias, activation, log compression, then the residual add of
// a transformer block's projection (out[i] = ... + residual[i]).
fn epilogue(acc: f32, row: u32, col: u32) {
    var v = acc;
    if (p.has_bias == 1u) { v += bias[col]; }
    v = compress(activate(v, p.act, p.slope), p.log_kind, p.eps);
    let at = row * p.n + col;
    if (p.has_residual == 1u) { v += residual[at]; }
    out[at] = v;
}

const T: u32 = 16u;
var<workgroup> ta: array<array<Stage, 16>, 16>;
var<workgroup> tb: array<array<Stage, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let row = wid.y * T + l.y;
    let col = wid.x * T + l.x;
    var acc = 0.0;
    let slabs = (p.k + T - 1u) / T;
    for (var s = 0u; s < slabs; s++) {
        let ka = s * T + l.x;
        ta[l.y][l.x] = stage(select(0.0, a[row * p.k + ka], row < p.m && ka < p.k));
        let kb = s * T + l.y;
        var vb = 0.0;
        if (col < p.n && kb < p.k) {
            vb = select(b[kb * p.n + col], b[col * p.k + kb], p.b_trans == 1u);
        }
        tb[l.y][l.x] = stage(vb);
        workgroupBarrier();
        for (var i = 0u; i < T; i++) {
            acc += f32(ta[l.y][i]) * f32(tb[i][l.x]);
        }
        workgroupBarrier();
    }
    if (row < p.m && col < p.n) {
        epilogue(acc, row, col);
    }
}

// The same product, register-blocked: a 16×16 workgroup computes a 64×64 output tile, each
// invocation 4×4 outputs (rows l.y + 16i, columns l.x + 16j: neighbouring invocations write
// neighbouring columns), K in 16-deep slabs staged k-major through workgroup memory. Each
// slab's 32 workgroup reads per invocation feed 256 multiply-adds (the 16×16 kernel: 32 for 16).
const RB: u32 = 64u;
const RK: u32 = 16u;
// Rows padded to STAGE_ROW (65 f32 or 66 f16: an odd number of words): the staging stores walk
// k (the first index) across neighbouring invocations, and 64-wide rows put all 16 of them in
// one memory bank (16-way conflicts).
var<workgroup> sa: array<array<Stage, STAGE_ROW>, 16>;
var<workgroup> sb: array<array<Stage, STAGE_ROW>, 16>;

@compute @workgroup_size(16, 16)
fn matmul_rb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let m0 = wid.y * RB;
    let n0 = wid.x * RB;
    let tid = l.y * 16u + l.x;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += RK) {
        // 1024 values of A and of B per slab, four per invocation; neighbouring invocations
        // read neighbouring addresses (k for A and for a transposed B, columns for B).
        for (var i = 0u; i < 4u; i++) {
            let e = tid + 256u * i;
            let row = m0 + e / RK;
            let ka = k0 + e % RK;
            sa[e % RK][e / RK] = stage(select(0.0, a[row * p.k + ka], row < p.m && ka < p.k));
            if (p.b_trans == 1u) {
                let col = n0 + e / RK;
                let kb = k0 + e % RK;
                sb[e % RK][e / RK] = stage(select(0.0, b[col * p.k + kb], col < p.n && kb < p.k));
            } else {
                let col = n0 + e % RB;
                let kb = k0 + e / RB;
                sb[e / RB][e % RB] = stage(select(0.0, b[kb * p.n + col], col < p.n && kb < p.k));
            }
        }
        workgroupBarrier();
        for (var k = 0u; k < RK; k++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = f32(sa[k][l.y + 16u * i]);
                bv[i] = f32(sb[k][l.x + 16u * i]);
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + l.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + l.x + 16u * j;
            if (row < p.m && col < p.n) {
                epilogue(acc[i][j], row, col);
            }
        }
    }
}
