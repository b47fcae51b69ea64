// Shared by every deepscreen kernel (prepended to each module at load time).
// Workgroups may be laid out in 2-D when a dispatch exceeds 65,535 groups per dimension;
// `linear_group` / `linear_id` undo that.

const WG: u32 = 256u;

fn linear_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return linear_group(wid, nwg) * WG + lid;
}

// 0 none, 1 relu, 2 leaky relu (slope), 3 sigmoid, 4 GELU (erf)
fn activate(x: f32, kind: u32, slope: f32) -> f32 {
    switch kind {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(x * slope, x, x >= 0.0); }
        case 3u: { return 1.0 / (1.0 + exp(-x)); }
        case 4u: { return 0.5 * x * (1.0 + erf(x * 0.7071067811865476)); }
        default: { return x; }
    }
}

// WGSL has no erf: Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), odd-extended.
fn erf(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-a * a));
}

// 0 none, 1 ln(x + eps), 2 log10(x + eps), 3 10·log10(max(x, eps)), 4 log10(max(x, eps))
fn compress(x: f32, kind: u32, eps: f32) -> f32 {
    switch kind {
        case 1u: { return log(x + eps); }
        case 2u: { return log(x + eps) * 0.43429448190325176; }
        case 3u: { return 10.0 * log(max(x, eps)) * 0.43429448190325176; }
        case 4u: { return log(max(x, eps)) * 0.43429448190325176; }
        default: { return x; }
    }
}
