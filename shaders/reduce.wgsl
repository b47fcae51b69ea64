// Workgroup reductions over 256 invocations, through workgroup memory (a halving tree): the
// fallback where the adapter offers no subgroup operations (`reduce_subgroups.wgsl` is the
// other version; the backend prepends one of the two to every module).

// The invocation's place in its workgroup (entry points take it as a parameter).
struct Lanes {
    @builtin(local_invocation_index) index: u32,
};

var<workgroup> partial: array<f32, 256>;

// The sum (or, with `take_max`, the maximum) of `v` over the workgroup, returned to every
// invocation. Called from uniform control flow.
fn workgroup_reduce(lanes: Lanes, v: f32, take_max: bool) -> f32 {
    let lid = lanes.index;
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let other = partial[lid + s];
            partial[lid] = select(partial[lid] + other, max(partial[lid], other), take_max);
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}
