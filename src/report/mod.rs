//! The report: one [`Row`] per input, written as JSON Lines or CSV ([`ReportWriter`], each row
//! flushed as it is written, so an interrupted run keeps every row it finished) and read back
//! by one reader ([`RowReader`]) that `--resume`, `merge`, `review` and the fuzz targets share.

mod read;
mod write;

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Serialize, Serializer};

pub use read::{Entry, Raw, RowReader};
pub use write::ReportWriter;

/// A file's verdict, in ASVspoof's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Scored at or above the threshold.
    Synthetic,
    /// Scored below the threshold.
    BonaFide,
    /// No active signal (digital silence or nearly so): not scored, `score` null.
    NoSignal,
}

impl Verdict {
    /// The verdict of a score at a threshold.
    pub fn of_score(score: f32, threshold: f32) -> Verdict {
        if score >= threshold {
            Verdict::Synthetic
        } else {
            Verdict::BonaFide
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Synthetic => "synthetic",
            Verdict::BonaFide => "bona-fide",
            Verdict::NoSignal => "no-signal",
        }
    }

    /// The verdict a report spells `text`; None for anything else.
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Synthetic, Verdict::BonaFide, Verdict::NoSignal]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
    pub score: f32,
    /// A fused model's member scores of this window, in the model's member order; null
    /// where its cascade skipped a member (`training/fuse.py --cascade` fits on these).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Option<f32>>>,
}

/// One result per input file. On failure `error` is set and the measurement fields that could
/// not be obtained are null. Read back from a report, a field that is missing or malformed
/// (a hand-edited report) is null or empty; only `path` is required.
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
    pub verdict: Option<Verdict>,
    /// The threshold the verdict was decided at (a report holds one threshold: `--resume` and
    /// `merge` refuse to mix). Always written; None only for a row read without one.
    pub threshold: Option<f32>,
    pub max_window_score: Option<f32>,
    pub mean_window_score: Option<f32>,
    pub windows: Option<usize>,
    /// Of `windows`, how many a fused model's cascade decided by its cheap members alone
    /// (its costly members skipped them). Null for a single network or `--exact`.
    pub cascade_skipped: Option<usize>,
    /// With a model's segment rule (partial fakes): the strongest run of its length of
    /// consecutive windows, as the lowest window score in it (every window of the run scores
    /// at least this), and where it lies. Null without a rule or with too few windows.
    pub segment_score: Option<f32>,
    pub segment_start_s: Option<f64>,
    pub segment_end_s: Option<f64>,
    /// The segment rule's threshold: a `segment_score` at or above it makes the verdict
    /// `synthetic` whatever `score` says. Null when no rule applied.
    pub segment_threshold: Option<f32>,
    /// Voices inside music (a music screen's vocal stage, `--vocals`): the highest share of
    /// a tested segment's energy the separator's voice U-Net holds (0–1). Null without the
    /// stage.
    pub vocal_share: Option<f32>,
    /// The voice model's score of the separated voice: its strongest voiced span's mean window
    /// score. Null when the stage is off, failed, or found no voice.
    pub vocal_score: Option<f32>,
    /// Where that span lies: the segments that triggered the vocal verdict.
    pub vocal_start_s: Option<f64>,
    pub vocal_end_s: Option<f64>,
    /// The vocal stage's threshold: a `vocal_score` at or above it makes the verdict
    /// `synthetic`. Written on every row when the stage is on, null when it is off.
    pub vocal_threshold: Option<f32>,
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

/// The CSV columns; `cascade_skipped` came with the cascade, the four `segment_*` with the
/// segment rule. Reports with older columns ([`LEGACY_CSV_HEADERS`]) are read, not appended to.
pub const CSV_HEADER: [&str; 28] = [
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
    "cascade_skipped",
    "segment_score",
    "segment_start_s",
    "segment_end_s",
    "segment_threshold",
    "vocal_share",
    "vocal_score",
    "vocal_start_s",
    "vocal_end_s",
    "vocal_threshold",
];

/// The CSV columns of older reports, as how many of [`CSV_HEADER`]'s first columns they
/// have: before `cascade_skipped` (18), before the segment rule (19), before the vocal stage
/// (23).
pub const LEGACY_CSV_HEADERS: [usize; 3] = [18, 19, 23];

/// The header line of CSV reports with `columns` of [`CSV_HEADER`]'s columns.
fn header_line(columns: usize) -> String {
    CSV_HEADER[..columns].join(",")
}

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
    /// Lines when the first line is a JSON object; CSV when it is deepscreen's CSV header
    /// (this version's or an older one, [`LEGACY_CSV_HEADERS`]). Anything else (another tool's CSV,
    /// text) is an error naming the file.
    pub fn detect(path: &Path) -> crate::Result<Option<Format>> {
        let first = first_line(path)?;
        if first.is_empty() {
            Ok(None)
        } else if first.starts_with('{') {
            Ok(Some(Format::Jsonl))
        } else if first == CSV_HEADER.join(",") || legacy_csv_header(&first) {
            Ok(Some(Format::Csv))
        } else {
            let shown: String = first.chars().take(80).collect();
            Err(crate::Error::Report(format!(
                "{} is not a deepscreen report: its first line is neither a JSON object nor the \
                 CSV header \"{}\" (it starts \"{shown}\")",
                path.display(),
                CSV_HEADER.join(",")
            )))
        }
    }
}

/// Whether a CSV report has the columns of an older version (no `cascade_skipped` or no
/// `segment_*`): read by merge and review, but never appended to, which would mix rows of two
/// widths in one file.
pub fn is_legacy_csv(path: &Path) -> crate::Result<bool> {
    Ok(legacy_csv_header(&first_line(path)?))
}

fn legacy_csv_header(line: &str) -> bool {
    LEGACY_CSV_HEADERS.iter().any(|&n| line == header_line(n))
}

/// A report's first line that is not blank, trimmed ("" for an empty file).
fn first_line(path: &Path) -> crate::Result<String> {
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
    Ok(String::from_utf8_lossy(&first).trim().to_string())
}
