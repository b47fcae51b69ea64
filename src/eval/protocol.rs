//! Labelled protocols: which file is bona fide or spoof, and by which attack.
//!
//! - In-the-Wild `meta.csv`: `file,speaker,label` with `bona-fide` / `spoof` (header line).
//! - ASVspoof 2019 LA: `SPEAKER UTT - ATTACK KEY` per line (`KEY` = `bonafide` | `spoof`),
//!   audio at `AUDIO_DIR/UTT.flac`.
//! - Plain CSV with a header naming `path` (or `file`), `label` and optionally `attack`.
//!
//! Labels accepted (case-insensitive): bona-fide, bonafide, bona_fide, real, genuine → bona
//! fide; spoof, fake, synthetic → spoof.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Identifier written to the score file (file name or utterance id).
    pub id: String,
    pub path: PathBuf,
    pub spoof: bool,
    /// Attack / generator name; "-" for bona fide or unknown.
    pub attack: String,
    /// Where the audio comes from (a corpus, a package, a speaker set): a `source` column of a
    /// CSV protocol, the speaker of In-the-Wild and ASVspoof; "-" when unknown. Bona fide
    /// false alarms are reported per source.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolFormat {
    /// Guess from the first line.
    Auto,
    /// In-the-Wild meta.csv: file,speaker,label.
    InTheWild,
    /// ASVspoof 2019 LA: SPEAKER UTT - ATTACK KEY.
    Asvspoof2019,
    /// CSV with path (or file), label and optional attack columns.
    Csv,
}

fn label(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "bona-fide" | "bonafide" | "bona_fide" | "bona fide" | "real" | "genuine" => Some(false),
        "spoof" | "fake" | "synthetic" => Some(true),
        _ => None,
    }
}

fn bad(file: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Audio(format!("{}:{line}: {msg}", file.display()))
}

/// Read a protocol. Relative audio paths resolve against `audio_dir`, or else the protocol's
/// own directory.
pub fn read(
    protocol: &Path,
    format: ProtocolFormat,
    audio_dir: Option<&Path>,
) -> Result<Vec<Trial>> {
    let text = std::fs::read_to_string(protocol).map_err(|source| Error::Io {
        path: protocol.to_path_buf(),
        cause: source,
    })?;
    let base = audio_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| protocol.parent().map(Path::to_path_buf).unwrap_or_default());
    let first = text.lines().next().unwrap_or_default().to_ascii_lowercase();
    let format = match format {
        ProtocolFormat::Auto
            if first.contains(',') && first.contains("speaker") && !first.contains("path") =>
        {
            ProtocolFormat::InTheWild
        }
        ProtocolFormat::Auto if first.contains(',') => ProtocolFormat::Csv,
        ProtocolFormat::Auto => ProtocolFormat::Asvspoof2019,
        f => f,
    };
    let mut trials = Vec::new();
    match format {
        ProtocolFormat::Asvspoof2019 => {
            for (i, line) in BufReader::new(text.as_bytes()).lines().enumerate() {
                let line = line.map_err(|e| bad(protocol, i + 1, e))?;
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.is_empty() {
                    continue;
                }
                if f.len() != 5 {
                    return Err(bad(
                        protocol,
                        i + 1,
                        "expected 5 fields: SPEAKER UTT - ATTACK KEY",
                    ));
                }
                let spoof = label(f[4])
                    .ok_or_else(|| bad(protocol, i + 1, format!("unknown key {:?}", f[4])))?;
                trials.push(Trial {
                    id: f[1].to_string(),
                    path: base.join(format!("{}.flac", f[1])),
                    spoof,
                    attack: if spoof { f[3].to_string() } else { "-".into() },
                    source: f[0].to_string(),
                });
            }
        }
        ProtocolFormat::InTheWild | ProtocolFormat::Csv | ProtocolFormat::Auto => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers: Vec<String> = reader
                .headers()
                .map_err(|e| bad(protocol, 1, e))?
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect();
            let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
            let path_col =
                col(&["path", "file"]).ok_or_else(|| bad(protocol, 1, "no path or file column"))?;
            let label_col =
                col(&["label", "key"]).ok_or_else(|| bad(protocol, 1, "no label column"))?;
            let attack_col = col(&["attack", "generator"]);
            let source_col = col(&["source", "speaker"]);
            for (i, rec) in reader.records().enumerate() {
                let rec = rec.map_err(|e| bad(protocol, i + 2, e))?;
                let file = rec.get(path_col).unwrap_or_default().trim().to_string();
                let spoof = label(rec.get(label_col).unwrap_or_default()).ok_or_else(|| {
                    bad(
                        protocol,
                        i + 2,
                        format!("unknown label {:?}", rec.get(label_col)),
                    )
                })?;
                let attack = attack_col
                    .and_then(|c| rec.get(c))
                    .filter(|a| spoof && !a.trim().is_empty())
                    .unwrap_or("-")
                    .trim()
                    .to_string();
                let source = source_col
                    .and_then(|c| rec.get(c))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("-")
                    .to_string();
                trials.push(Trial {
                    path: base.join(&file),
                    id: file,
                    spoof,
                    attack,
                    source,
                });
            }
        }
    }
    Ok(trials)
}
