// The GEMMs' shared part (prepended to `matmul.wgsl` and `matmul_vec4.wgsl`, which bind A and
// B as f32 and as vec4 values): the parameters, the other bindings, the epilogue, and the
// register-blocked kernels' staging and products. out[M, N] = epilogue(A[M, K] · B), B stored
// [K, N] or, when `b_trans` = 1, [N, K] (PyTorch linear weights), staged through workgroup
// memory as `Stage` values: f32, or f16 in the module's f16 build (`matmul_f16`,
// `matmul_rb_f16`: half the workgroup memory, inputs rounded to f16's 11 significant bits, as
// TF32 rounds them, within f16's range; the products and sums stay f32). The backend defines
// `Stage`, `STAGE_ROW` and `stage()` before this source.

struct Params {
    m: u32, n: u32, k: u32, b_trans: u32,
    has_bias: u32, act: u32, slope: f32, log_kind: u32,
    eps: f32, has_residual: u32, _p1: u32, _p2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// The epilogue of every GEMM kernel: bias, activation, log compression, then the residual add
// of a transformer block's projection (out[i] = ... + residual[i]).
fn epilogue(acc: f32, row: u32, col: u32) {
    var v = acc;
    if (p.has_bias == 1u) { v += bias[col]; }
    v = compress(activate(v, p.act, p.slope), p.log_kind, p.eps);
    let at = row * p.n + col;
    if (p.has_residual == 1u) { v += residual[at]; }
    out[at] = v;
}

// The register-blocked kernels (`matmul_rb`, `matmul_rb_vec4`): a 16×16 workgroup computes a
// 64×64 output tile, each invocation 4×4 outputs (rows l.y + 16i, columns l.x + 16j: neighbouring invocations write
// neighbouring columns), K in 16-deep slabs staged k-major through workgroup memory. Each
// slab's 32 workgroup reads per invocation feed 256 multiply-adds (the 16×16 kernel: 32 for 16).
const RB: u32 = 64u;
const RK: u32 = 16u;
// Rows padded to STAGE_ROW (65 f32 or 66 f16: an odd number of words): the staging stores walk
// k (the first index) across neighbouring invocations, and 64-wide rows put all 16 of them in
// one memory bank (16-way conflicts).
var<workgroup> sa: array<array<Stage, STAGE_ROW>, 16>;
var<workgroup> sb: array<array<Stage, STAGE_ROW>, 16>;

// Invocation l's share of one staged slab: acc[i][j] += Σ_k A[row i, k] · B[k, column j].
fn rb_slab_products(l: vec3<u32>, acc: ptr<function, array<array<f32, 4>, 4>>) {
    for (var k = 0u; k < RK; k++) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            av[i] = f32(sa[k][l.y + 16u * i]);
            bv[i] = f32(sb[k][l.x + 16u * i]);
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                (*acc)[i][j] = fma(av[i], bv[j], (*acc)[i][j]);
            }
        }
    }
}

// Invocation l's 4×4 outputs of the tile at (m0, n0) through the epilogue.
fn rb_store(l: vec3<u32>, m0: u32, n0: u32, acc: array<array<f32, 4>, 4>) {
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
