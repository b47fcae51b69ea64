// Workgroup reductions over 256 invocations with subgroup operations: each subgroup reduces
// in registers, then every invocation combines the subgroups' results (at most 64, from
// workgroup memory). Two barriers instead of the tree's ten (`reduce.wgsl`, the fallback,
// has the same interface). Needs the adapter's subgroup feature (naga takes no directive).
// The subgroups may be partial (Vulkan pipelines here allow varying sizes), so the writer is the
// lowest active lane, not lane 0. On DX12 naga derives subgroup_id from the invocation index and
// the wave size, which assumes waves are filled in index order (true of current hardware).

struct Lanes {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
    @builtin(subgroup_invocation_id) lane: u32,
};

var<workgroup> partial: array<f32, 256>;

fn workgroup_reduce(lanes: Lanes, v: f32, take_max: bool) -> f32 {
    var r: f32;
    if (take_max) { r = subgroupMax(v); } else { r = subgroupAdd(v); }
    if (lanes.lane == subgroupBroadcastFirst(lanes.lane)) { partial[lanes.subgroup] = r; }
    workgroupBarrier();
    var total = partial[0];
    for (var i = 1u; i < lanes.subgroups; i++) {
        total = select(total + partial[i], max(total, partial[i]), take_max);
    }
    workgroupBarrier();
    return total;
}
