// The GEMMs on f32 bindings (after `gemm.wgsl`): the 16×16-tile kernel, for the filterbank
// projection (+ log), the DCT and linear layers (+ bias + activation, + a residual), K in
// 16-wide slabs; and the register-blocked one.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

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
        rb_slab_products(l, &acc);
        workgroupBarrier();
    }
    rb_store(l, m0, n0, acc);
}
