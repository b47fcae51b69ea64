// 2-D convolution (NCHW) as an implicit GEMM: for batch item z, out[O, Ho·Wo] =
// W[O, C·kh·kw] · cols[C·kh·kw, Ho·Wo], where cols is never materialised: each 16×16 tile of
// it is gathered from the input (zero padding) straight into workgroup memory. Bias (batch
// norm folded in) and the activation are fused into the store.

struct Params {
    c: u32, h: u32, w: u32, o: u32,
    kh: u32, kw: u32, sh: u32, sw: u32,
    ph: u32, pw: u32, ho: u32, wo: u32,
    has_bias: u32, act: u32, slope: f32, _p0: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const T: u32 = 16u;
var<workgroup> tw: array<array<f32, 16>, 16>;
var<workgroup> tx: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let item = wid.z;
    let oc = wid.y * T + l.y;              // output channel (GEMM row)
    let px = wid.x * T + l.x;              // output pixel (GEMM column)
    let kk = p.kh * p.kw;
    let k_total = p.c * kk;
    let hw_out = p.ho * p.wo;
    let in_base = item * p.c * p.h * p.w;
    var acc = 0.0;
    let slabs = (k_total + T - 1u) / T;
    for (var s = 0u; s < slabs; s++) {
        let ka = s * T + l.x;
        tw[l.y][l.x] = select(0.0, weight[oc * k_total + ka], oc < p.o && ka < k_total);
        // gather cols[kb, px] for this thread's (row l.y, column l.x) of the B tile
        let kb = s * T + l.y;
        var v = 0.0;
        if (kb < k_total && px < hw_out) {
            let ch = kb / kk;
            let r = kb % kk;
            let ki = r / p.kw;
            let kj = r % p.kw;
            let oh = px / p.wo;
            let ow = px % p.wo;
            let ih = i32(oh * p.sh + ki) - i32(p.ph);
            let iw = i32(ow * p.sw + kj) - i32(p.pw);
            if (ih >= 0 && iw >= 0 && ih < i32(p.h) && iw < i32(p.w)) {
                v = x[in_base + (ch * p.h + u32(ih)) * p.w + u32(iw)];
            }
        }
        tx[l.y][l.x] = v;
        workgroupBarrier();
        for (var i = 0u; i < T; i++) {
            acc += tw[l.y][i] * tx[i][l.x];
        }
        workgroupBarrier();
    }
    if (oc < p.o && px < hw_out) {
        var v = acc;
        if (p.has_bias == 1u) { v += bias[oc]; }
        out[(item * p.o + oc) * hw_out + px] = activate(v, p.act, p.slope);
    }
}
