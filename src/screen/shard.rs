//! Deterministic sharding: input `path` belongs to shard `xxh3(path bytes) mod N`. The same
//! path always lands in the same shard, whatever the machine or the order of inputs, so a
//! catalog splits across servers by an existing scheduler and the outputs merge back.

use std::path::Path;
use std::str::FromStr;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl FromStr for Shard {
    type Err = String;
    /// `I/N` with 0 ≤ I < N.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N (e.g. 0/4)"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("{i:?} is not a shard index"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    pub fn contains(&self, path: &Path) -> bool {
        xxhash_rust::xxh3::xxh3_64(&crate::report::path_bytes(path)) % self.count == self.index
    }

    /// The shard a scheduler assigned through the environment, if any:
    /// - Slurm job arrays: `SLURM_ARRAY_TASK_ID` (minus `SLURM_ARRAY_TASK_MIN`, default 0) of
    ///   `SLURM_ARRAY_TASK_COUNT`;
    /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` of `DEEPSCREEN_SHARD_COUNT` (Kubernetes
    ///   does not export the completion count; set it in the pod spec, see README).
    pub fn from_env() -> Result<Option<Shard>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let num = |k: &str| -> Result<Option<u64>> {
            var(k)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| Error::Audio(format!("{k}={v:?} is not a number")))
                })
                .transpose()
        };
        let make = |index: u64, count: u64, source: &str| {
            format!("{index}/{count}")
                .parse::<Shard>()
                .map(Some)
                .map_err(|e| Error::Audio(format!("shard from {source}: {e}")))
        };
        if let (Some(id), Some(count)) =
            (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?)
        {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            return make(id.saturating_sub(min), count, "SLURM_ARRAY_TASK_ID/COUNT");
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("DEEPSCREEN_SHARD_COUNT")?.ok_or_else(|| {
                Error::Audio(
                    "JOB_COMPLETION_INDEX is set but DEEPSCREEN_SHARD_COUNT is not: set it to the \
                     Job's completions (see README)"
                        .into(),
                )
            })?;
            return make(index, count, "JOB_COMPLETION_INDEX/DEEPSCREEN_SHARD_COUNT");
        }
        Ok(None)
    }
}
