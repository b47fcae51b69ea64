// Inverse STFT, second step: [B, T, n_fft] windowed frames → [B, (T − 1)·hop + n_fft], each
// sample the sum of the frames that cover it (one invocation per output sample, no atomics).

struct Params { n: u32, len: u32, frames: u32, n_fft: u32, hop: u32, _p0: u32, _p1: u32, _p2: u32 };

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> framed: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn overlap_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let id = linear_id(wid, nwg, lid);
    if (id >= p.n) { return; }
    let b = id / p.len;
    let i = id % p.len;
    // Frames t with t·hop ≤ i < t·hop + n_fft.
    var first = 0u;
    if (i + 1u > p.n_fft) { first = (i + 1u - p.n_fft + p.hop - 1u) / p.hop; }
    let last = min(i / p.hop, p.frames - 1u);
    var acc = 0.0;
    for (var t = first; t <= last; t++) {
        acc += framed[(b * p.frames + t) * p.n_fft + i - t * p.hop];
    }
    out[id] = acc;
}
