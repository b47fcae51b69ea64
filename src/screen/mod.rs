//! Screening a catalog: inputs → decode workers → batched scoring → per-file rows.

pub mod inputs;
pub mod journal;
pub mod merge;
pub mod pipeline;
pub mod report;
pub mod shard;
