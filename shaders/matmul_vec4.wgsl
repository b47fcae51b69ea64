// The register-blocked GEMM for linear layers (b_trans, K a multiple of 4) reading A and B
// as vec4 values (after `gemm.wgsl`): each invocation loads one vec4 of A and one of B per
// 16-deep slab, where `matmul_rb` loads four scalars of each.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

@compute @workgroup_size(16, 16)
fn matmul_rb_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let m0 = wid.y * RB;
    let n0 = wid.x * RB;
    let tid = l.y * 16u + l.x;
    let k4 = p.k / 4u;
    var acc: array<array<f32, 4>, 4>;
    // Row r of the tile's A and B slabs is read by invocations 4r .. 4r + 3, four values each.
    let r = tid / 4u;
    let q = tid % 4u;
    for (var k0 = 0u; k0 < p.k; k0 += RK) {
        let kq = k0 / 4u + q;
        let row = m0 + r;
        let col = n0 + r;
        var va = vec4<f32>(0.0);
        var vb = vec4<f32>(0.0);
        if (row < p.m && kq < k4) { va = a[row * k4 + kq]; }
        if (col < p.n && kq < k4) { vb = b[col * k4 + kq]; }
        for (var j = 0u; j < 4u; j++) {
            sa[4u * q + j][r] = stage(va[j]);
            sb[4u * q + j][r] = stage(vb[j]);
        }
        workgroupBarrier();
        rb_slab_products(l, &acc);
        workgroupBarrier();
    }
    rb_store(l, m0, n0, acc);
}
