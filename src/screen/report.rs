//! Report rows and their writers (JSON Lines or CSV). Each row is flushed as it is written,
//! so an interrupted run keeps every row it finished.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::Serialize;

/// Verdict strings, in ASVspoof's vocabulary.
pub const SYNTHETIC: &str = "synthetic";
pub const BONA_FIDE: &str = "bona-fide";
/// The file holds no active signal (digital silence or nearly so): not scored, `score` null.
pub const NO_SIGNAL: &str = "no-signal";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
    pub score: f32,
}

/// One result per input file. On failure `error` is set and the measurement fields that could
/// not be obtained are null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The path as given or found (lossy UTF-8 for non-UTF-8 names).
    pub path: String,
    /// The path's exact bytes in hex, only when they are not UTF-8 (`path` then shows U+FFFD
    /// and two names could look alike): resume, merge and shards go by these bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Calibrated probability that the audio is synthetic (aggregated over windows).
    pub score: Option<f32>,
    pub verdict: Option<&'static str>,
    /// The threshold the verdict was decided at (a report holds one threshold: `--resume` and
    /// `merge` refuse to mix).
    pub threshold: f32,
    pub max_window_score: Option<f32>,
    pub mean_window_score: Option<f32>,
    pub windows: Option<usize>,
    pub duration_s: Option<f64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<usize>,
    pub codec: Option<String>,
    pub container: Option<String>,
    pub model: String,
    pub backend: String,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// Per-window scores, with `--segments`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<Segment>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header; warnings joined by "; ", segments as JSON.
    Csv,
}

pub const CSV_HEADER: [&str; 18] = [
    "path",
    "score",
    "verdict",
    "threshold",
    "max_window_score",
    "mean_window_score",
    "windows",
    "duration_s",
    "sample_rate",
    "channels",
    "codec",
    "container",
    "model",
    "backend",
    "error",
    "warnings",
    "segments",
    "path_hex",
];

/// A path's exact bytes (on Unix; elsewhere its lossy UTF-8).
pub fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::borrow::Cow::Owned(path.to_string_lossy().into_owned().into_bytes())
    }
}

/// The row's `path_hex`: the exact bytes in lowercase hex when they are not UTF-8.
pub fn path_hex(path: &Path) -> Option<String> {
    let bytes = path_bytes(path);
    std::str::from_utf8(&bytes).is_err().then(|| {
        bytes
            .iter()
            .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
                s.push_str(&format!("{b:02x}"));
                s
            })
    })
}

/// A row's path identity (exact bytes) from its `path` and `path_hex` fields. A `path_hex`
/// that is not hex (a hand-edited report) falls back to `path`.
pub fn row_path_bytes(path: &str, path_hex: Option<&str>) -> Vec<u8> {
    let decoded = path_hex.filter(|h| !h.is_empty()).and_then(|h| {
        (h.len() % 2 == 0)
            .then(|| {
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten()
    });
    decoded.unwrap_or_else(|| path.as_bytes().to_vec())
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "JSON Lines",
            Format::Csv => "CSV",
        }
    }

    /// The format a report's file name asks for: `.csv`, or `.jsonl` / `.json` / `.ndjson`.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "json" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }

    /// The format of `-o FILE`: `--format` if given, else the extension, else JSON Lines; an
    /// explicit format that contradicts the extension is an error (a CSV named .jsonl would be
    /// misread by every tool downstream).
    pub fn for_output(explicit: Option<Format>, output: Option<&Path>) -> Result<Format, String> {
        let implied = output.and_then(Format::from_extension);
        match (explicit, implied) {
            (Some(e), Some(i)) if e != i => Err(format!(
                "--format {} contradicts the file name {} ({} by its extension): change one",
                e.name(),
                output.map(|p| p.display().to_string()).unwrap_or_default(),
                i.name()
            )),
            (Some(f), _) | (None, Some(f)) => Ok(f),
            (None, None) => Ok(Format::Jsonl),
        }
    }

    /// What an existing report holds, judged by its content: `None` for an empty file; JSON
    /// Lines when the first line is a JSON object; CSV when it is deepscreen's CSV header.
    /// Anything else (another tool's CSV, an older header, text) is an error naming the file.
    pub fn detect(path: &Path) -> crate::Result<Option<Format>> {
        let io = |source| crate::Error::Io {
            path: path.to_path_buf(),
            cause: source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut first = Vec::new();
        for line in BufReader::new(file).split(b'\n') {
            first = line.map_err(io)?;
            if !first.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let first = String::from_utf8_lossy(&first);
        let first = first.trim();
        if first.is_empty() {
            Ok(None)
        } else if first.starts_with('{') {
            Ok(Some(Format::Jsonl))
        } else if first == CSV_HEADER.join(",") {
            Ok(Some(Format::Csv))
        } else {
            let shown: String = first.chars().take(80).collect();
            Err(crate::Error::Audio(format!(
                "{} is not a deepscreen report: its first line is neither a JSON object nor the \
                 CSV header \"{}\" (it starts \"{shown}\")",
                path.display(),
                CSV_HEADER.join(",")
            )))
        }
    }
}

pub enum ReportWriter {
    Jsonl(Box<dyn Write + Send>),
    Csv(Box<csv::Writer<Box<dyn Write + Send>>>),
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl ReportWriter {
    /// `header`: write the CSV header (not when appending to an existing report).
    pub fn new(out: Box<dyn Write + Send>, format: Format, header: bool) -> std::io::Result<Self> {
        Ok(match format {
            Format::Jsonl => ReportWriter::Jsonl(out),
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                if header {
                    w.write_record(CSV_HEADER)?;
                    w.flush()?;
                }
                ReportWriter::Csv(Box::new(w))
            }
        })
    }

    pub fn write(&mut self, row: &Row) -> std::io::Result<()> {
        match self {
            ReportWriter::Jsonl(out) => {
                serde_json::to_writer(&mut *out, row)?;
                out.write_all(b"\n")?;
                out.flush()
            }
            ReportWriter::Csv(w) => {
                let segments = match &row.segments {
                    Some(s) => serde_json::to_string(s)?,
                    None => String::new(),
                };
                w.write_record([
                    row.path.clone(),
                    opt(&row.score),
                    opt(&row.verdict),
                    row.threshold.to_string(),
                    opt(&row.max_window_score),
                    opt(&row.mean_window_score),
                    opt(&row.windows),
                    opt(&row.duration_s),
                    opt(&row.sample_rate),
                    opt(&row.channels),
                    opt(&row.codec),
                    opt(&row.container),
                    row.model.clone(),
                    row.backend.clone(),
                    opt(&row.error),
                    row.warnings.join("; "),
                    segments,
                    opt(&row.path_hex),
                ])?;
                w.flush()
            }
        }
    }
}
