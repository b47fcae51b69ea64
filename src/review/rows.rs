//! Reading a `screen` report (JSON Lines or CSV, detected from its content) back into rows.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::screen::report::{Format, Segment, row_path_bytes};
use crate::{Error, Result};

/// One report row, as much of it as the review page shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportRow {
    pub path: String,
    /// The exact path bytes (from `path_hex` when the name is not UTF-8).
    pub path_bytes: Vec<u8>,
    pub score: Option<f32>,
    pub verdict: Option<String>,
    pub threshold: Option<f32>,
    pub duration_s: Option<f64>,
    pub codec: Option<String>,
    pub model: String,
    pub backend: String,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub segments: Option<Vec<Segment>>,
}

impl ReportRow {
    /// The file this row is about, as an OS path (exact bytes on Unix).
    pub fn file(&self) -> PathBuf {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            PathBuf::from(std::ffi::OsStr::from_bytes(&self.path_bytes))
        }
        #[cfg(not(unix))]
        {
            PathBuf::from(&self.path)
        }
    }
}

/// Every row of the report at `path`.
pub fn read(path: &Path) -> Result<Vec<ReportRow>> {
    let bad = |what: String| Error::Report(format!("{}: {what}", path.display()));
    let format = Format::detect(path)?.ok_or_else(|| {
        bad("empty, or neither a JSON Lines nor a CSV report of `deepscreen screen`".into())
    })?;
    let file = std::fs::File::open(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut rows = Vec::new();
    match format {
        Format::Jsonl => {
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| bad(format!("line {} is not a JSON report row ({e})", i + 1)))?;
                rows.push(from_json(&v).ok_or_else(|| bad(format!("line {} has no path", i + 1)))?);
            }
        }
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(BufReader::new(file));
            let header = reader
                .headers()
                .map_err(|e| bad(format!("header ({e})")))?
                .clone();
            if header.get(0) != Some("path") {
                return Err(bad("the CSV header does not start with `path`".into()));
            }
            let column = |name: &str| header.iter().position(|h| h == name);
            let cols = [
                "score",
                "verdict",
                "threshold",
                "duration_s",
                "codec",
                "model",
                "backend",
                "error",
                "warnings",
                "segments",
                "path_hex",
            ]
            .map(column);
            for (i, record) in reader.records().enumerate() {
                let record = record.map_err(|e| bad(format!("record {} ({e})", i + 1)))?;
                let field = |k: usize| {
                    cols[k]
                        .and_then(|c| record.get(c))
                        .filter(|s| !s.is_empty())
                };
                let path = record.get(0).unwrap_or_default().to_string();
                rows.push(ReportRow {
                    path_bytes: row_path_bytes(&path, field(10)),
                    path,
                    score: field(0).and_then(|s| s.parse().ok()),
                    verdict: field(1).map(str::to_string),
                    threshold: field(2).and_then(|s| s.parse().ok()),
                    duration_s: field(3).and_then(|s| s.parse().ok()),
                    codec: field(4).map(str::to_string),
                    model: field(5).unwrap_or_default().to_string(),
                    backend: field(6).unwrap_or_default().to_string(),
                    error: field(7).map(str::to_string),
                    warnings: field(8)
                        .map(|w| w.split("; ").map(str::to_string).collect())
                        .unwrap_or_default(),
                    segments: field(9).and_then(|s| segments(&serde_json::from_str(s).ok()?)),
                });
            }
        }
    }
    Ok(rows)
}

fn from_json(v: &serde_json::Value) -> Option<ReportRow> {
    let text = |k: &str| v[k].as_str().map(str::to_string);
    let path = text("path")?;
    Some(ReportRow {
        path_bytes: row_path_bytes(&path, v["path_hex"].as_str()),
        path,
        score: v["score"].as_f64().map(|s| s as f32),
        verdict: text("verdict"),
        threshold: v["threshold"].as_f64().map(|s| s as f32),
        duration_s: v["duration_s"].as_f64(),
        codec: text("codec"),
        model: text("model").unwrap_or_default(),
        backend: text("backend").unwrap_or_default(),
        error: text("error"),
        warnings: v["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        segments: segments(&v["segments"]),
    })
}

fn segments(v: &serde_json::Value) -> Option<Vec<Segment>> {
    v.as_array()?
        .iter()
        .map(|s| {
            Some(Segment {
                start_s: s["start_s"].as_f64()?,
                end_s: s["end_s"].as_f64()?,
                score: s["score"].as_f64()? as f32,
            })
        })
        .collect()
}
