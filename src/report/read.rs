//! Reading a report back, row by row, in either format: what `--resume`, `merge` and `review`
//! all read through. Each [`Entry`] carries the row and its text as written, so a merge can
//! copy rows byte for byte.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use super::{CSV_HEADER, Format, Row, Segment, Verdict, row_path_bytes};
use crate::{Error, Result};

/// One row read back.
#[derive(Debug, Clone)]
pub struct Entry {
    pub row: Row,
    /// The row as it stands in the file.
    pub raw: Raw,
    /// Where it stands, for messages: "line 3" (JSON Lines) or "record 2" (CSV).
    pub at: String,
}

/// A row's text as written: a JSON line, or a CSV record.
#[derive(Debug, Clone)]
pub enum Raw {
    Line(String),
    Record(csv::StringRecord),
}

impl Row {
    /// The file this row is about, as an OS path (its exact bytes on Unix).
    pub fn file(&self) -> PathBuf {
        let bytes = row_path_bytes(&self.path, self.path_hex.as_deref());
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
        }
        #[cfg(not(unix))]
        {
            let _ = bytes;
            PathBuf::from(&self.path)
        }
    }

    /// The row's path identity: its exact bytes (see [`row_path_bytes`]).
    pub fn path_bytes(&self) -> Vec<u8> {
        row_path_bytes(&self.path, self.path_hex.as_deref())
    }

    /// A row from a JSON object; None without a `path`.
    fn from_json(v: &serde_json::Value) -> Option<Row> {
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let float = |k: &str| v[k].as_f64().map(|x| x as f32);
        let count = |k: &str| v[k].as_u64().and_then(|n| usize::try_from(n).ok());
        Some(Row {
            path: text("path")?,
            path_hex: text("path_hex"),
            score: float("score"),
            verdict: v["verdict"].as_str().and_then(Verdict::parse),
            threshold: float("threshold"),
            max_window_score: float("max_window_score"),
            mean_window_score: float("mean_window_score"),
            windows: count("windows"),
            cascade_skipped: count("cascade_skipped"),
            segment_score: float("segment_score"),
            segment_start_s: v["segment_start_s"].as_f64(),
            segment_end_s: v["segment_end_s"].as_f64(),
            segment_threshold: float("segment_threshold"),
            vocal_share: float("vocal_share"),
            vocal_score: float("vocal_score"),
            vocal_start_s: v["vocal_start_s"].as_f64(),
            vocal_end_s: v["vocal_end_s"].as_f64(),
            vocal_threshold: float("vocal_threshold"),
            duration_s: v["duration_s"].as_f64(),
            sample_rate: v["sample_rate"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok()),
            channels: count("channels"),
            codec: text("codec"),
            container: text("container"),
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

    /// A row from a CSV record whose columns are named by `header` (empty fields are null).
    fn from_csv(header: &csv::StringRecord, record: &csv::StringRecord) -> Row {
        let field = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .and_then(|c| record.get(c))
                .filter(|s| !s.is_empty())
        };
        let text = |name: &str| field(name).map(str::to_string);
        Row {
            path: record.get(0).unwrap_or_default().to_string(),
            path_hex: text("path_hex"),
            score: field("score").and_then(|s| s.parse().ok()),
            verdict: field("verdict").and_then(Verdict::parse),
            threshold: field("threshold").and_then(|s| s.parse().ok()),
            max_window_score: field("max_window_score").and_then(|s| s.parse().ok()),
            mean_window_score: field("mean_window_score").and_then(|s| s.parse().ok()),
            windows: field("windows").and_then(|s| s.parse().ok()),
            cascade_skipped: field("cascade_skipped").and_then(|s| s.parse().ok()),
            segment_score: field("segment_score").and_then(|s| s.parse().ok()),
            segment_start_s: field("segment_start_s").and_then(|s| s.parse().ok()),
            segment_end_s: field("segment_end_s").and_then(|s| s.parse().ok()),
            segment_threshold: field("segment_threshold").and_then(|s| s.parse().ok()),
            vocal_share: field("vocal_share").and_then(|s| s.parse().ok()),
            vocal_score: field("vocal_score").and_then(|s| s.parse().ok()),
            vocal_start_s: field("vocal_start_s").and_then(|s| s.parse().ok()),
            vocal_end_s: field("vocal_end_s").and_then(|s| s.parse().ok()),
            vocal_threshold: field("vocal_threshold").and_then(|s| s.parse().ok()),
            duration_s: field("duration_s").and_then(|s| s.parse().ok()),
            sample_rate: field("sample_rate").and_then(|s| s.parse().ok()),
            channels: field("channels").and_then(|s| s.parse().ok()),
            codec: text("codec"),
            container: text("container"),
            model: text("model").unwrap_or_default(),
            backend: text("backend").unwrap_or_default(),
            error: text("error"),
            warnings: field("warnings")
                .map(|w| w.split("; ").map(str::to_string).collect())
                .unwrap_or_default(),
            segments: field("segments").and_then(|s| segments(&serde_json::from_str(s).ok()?)),
        }
    }
}

fn segments(v: &serde_json::Value) -> Option<Vec<Segment>> {
    v.as_array()?
        .iter()
        .map(|s| {
            Some(Segment {
                start_s: s["start_s"].as_f64()?,
                end_s: s["end_s"].as_f64()?,
                score: s["score"].as_f64()? as f32,
                members: s["members"]
                    .as_array()
                    .map(|m| m.iter().map(|p| p.as_f64().map(|p| p as f32)).collect()),
            })
        })
        .collect()
}

enum Source {
    Jsonl(Lines<BufReader<File>>),
    Csv {
        header: csv::StringRecord,
        records: csv::StringRecordsIntoIter<BufReader<File>>,
    },
}

/// The rows of one report, in order. A line that is not a row, or a CSV header that is not
/// deepscreen's, is an error naming the file and where.
pub struct RowReader {
    path: PathBuf,
    source: Source,
    /// Lines (JSON Lines) or records (CSV) read so far.
    read: usize,
}

impl RowReader {
    /// Read `file` (the report at `path`, from its current position) as `format`.
    pub fn new(file: File, path: &Path, format: Format) -> Result<Self> {
        let source = match format {
            Format::Jsonl => Source::Jsonl(BufReader::new(file).lines()),
            Format::Csv => {
                let mut reader = csv::Reader::from_reader(BufReader::new(file));
                let header = reader
                    .headers()
                    .map_err(|e| Error::Report(format!("{}: header ({e})", path.display())))?
                    .clone();
                if header.get(0) != Some(CSV_HEADER[0]) {
                    return Err(Error::Report(format!(
                        "{}: the CSV header does not start with `path`",
                        path.display()
                    )));
                }
                Source::Csv {
                    header,
                    records: reader.into_records(),
                }
            }
        };
        Ok(RowReader {
            path: path.to_path_buf(),
            source,
            read: 0,
        })
    }

    /// Open the report at `path` in the format its content shows; None for an empty file.
    pub fn open(path: &Path) -> Result<Option<Self>> {
        let Some(format) = Format::detect(path)? else {
            return Ok(None);
        };
        let file = File::open(path).map_err(|cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::new(file, path, format).map(Some)
    }

    fn bad(&self, what: String) -> Error {
        Error::Report(format!("{}: {what}", self.path.display()))
    }
}

impl Iterator for RowReader {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            self.read += 1;
            let n = self.read;
            match &mut self.source {
                Source::Jsonl(lines) => {
                    let line = match lines.next()? {
                        Ok(line) => line,
                        Err(cause) => {
                            return Some(Err(Error::Io {
                                path: self.path.clone(),
                                cause,
                            }));
                        }
                    };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let at = format!("line {n}");
                    let row = serde_json::from_str::<serde_json::Value>(&line)
                        .map_err(|e| format!("{at} is not a JSON report row ({e})"))
                        .and_then(|v| Row::from_json(&v).ok_or(format!("{at} has no path")));
                    return Some(match row {
                        Ok(row) => Ok(Entry {
                            row,
                            raw: Raw::Line(line),
                            at,
                        }),
                        Err(what) => Err(self.bad(what)),
                    });
                }
                Source::Csv { header, records } => {
                    let at = format!("record {n}");
                    return Some(match records.next()? {
                        Ok(record) => Ok(Entry {
                            row: Row::from_csv(header, &record),
                            raw: Raw::Record(record),
                            at,
                        }),
                        Err(e) => Err(self.bad(format!("{at} ({e})"))),
                    });
                }
            }
        }
    }
}
