//! Screening a catalog: inputs → decode workers → batched scoring → per-file rows.

pub mod command;
pub mod inputs;
pub mod journal;
pub mod merge;
pub mod pipeline;
pub mod segment_run;
pub mod shard;
pub mod vocals;

/// Peak resident memory of this process (Linux: VmHWM), for summaries.
pub fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
