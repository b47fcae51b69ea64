//! `deepscreen merge`: combine shard outputs into one report, checking that no input has two
//! rows (duplicates) and, given the catalog's list, that every input has one (gaps).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::report::Format;
use crate::{Error, Result};

#[derive(Debug, Default, PartialEq)]
pub struct MergeReport {
    /// Rows written.
    pub rows: usize,
    /// Paths that had more than one row (the first one is kept).
    pub duplicates: Vec<String>,
    /// Paths of the expected list with no row.
    pub missing: Vec<String>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Merge the reports `inputs` (all in `format`) into `out`. With `expected` (one path per
/// line, as given to `screen --files-from`), paths without a row are reported as missing.
pub fn merge(
    inputs: &[PathBuf],
    format: Format,
    out: &mut dyn Write,
    expected: Option<&Path>,
) -> Result<MergeReport> {
    let mut report = MergeReport::default();
    let mut seen = HashSet::new();
    let mut keep = |path: String, report: &mut MergeReport| {
        if seen.insert(path.clone()) {
            report.rows += 1;
            true
        } else {
            report.duplicates.push(path);
            false
        }
    };
    let out_err = |e: std::io::Error| Error::Io {
        path: "<merged output>".into(),
        source: e,
    };
    match format {
        Format::Jsonl => {
            for input in inputs {
                let file = std::fs::File::open(input).map_err(io(input))?;
                for (i, line) in BufReader::new(file).lines().enumerate() {
                    let line = line.map_err(io(input))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let at = || format!("{} line {}", input.display(), i + 1);
                    let row: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
                        Error::Audio(format!("{}: not a JSON report row ({e})", at()))
                    })?;
                    let path = row["path"]
                        .as_str()
                        .ok_or_else(|| Error::Audio(format!("{}: no path", at())))?;
                    if keep(path.to_string(), &mut report) {
                        writeln!(out, "{line}").map_err(out_err)?;
                    }
                }
            }
            out.flush().map_err(out_err)?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            let csv_err =
                |input: &Path, e: csv::Error| Error::Audio(format!("{}: {e}", input.display()));
            for (n, input) in inputs.iter().enumerate() {
                let file = std::fs::File::open(input).map_err(io(input))?;
                let mut reader = csv::Reader::from_reader(BufReader::new(file));
                if n == 0 {
                    let header = reader.headers().map_err(|e| csv_err(input, e))?.clone();
                    w.write_record(&header).map_err(|e| csv_err(input, e))?;
                }
                for record in reader.records() {
                    let record = record.map_err(|e| csv_err(input, e))?;
                    if keep(record.get(0).unwrap_or_default().to_string(), &mut report) {
                        w.write_record(&record).map_err(|e| csv_err(input, e))?;
                    }
                }
            }
            w.flush().map_err(out_err)?;
        }
    }
    if let Some(list) = expected {
        let file = std::fs::File::open(list).map_err(io(list))?;
        for line in BufReader::new(file).split(b'\n') {
            let mut line = line.map_err(io(list))?;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                continue;
            }
            let path = String::from_utf8_lossy(&line).into_owned();
            if !seen.contains(&path) {
                report.missing.push(path);
            }
        }
    }
    Ok(report)
}

/// What to merge (the `merge` command's options).
#[derive(Debug, Clone)]
pub struct MergeJob {
    /// Shard reports, all JSON Lines or all CSV.
    pub reports: Vec<PathBuf>,
    /// The merged report [default: standard output].
    pub output: Option<PathBuf>,
    /// [default: csv if every report ends in .csv, else jsonl]
    pub format: Option<Format>,
    /// The catalog's path list, to report inputs with no row.
    pub expect: Option<PathBuf>,
}

/// `deepscreen merge`: write the merged report and tell on standard error what was merged,
/// duplicated and missing (the first 20 of each named).
pub fn run(job: &MergeJob) -> anyhow::Result<MergeReport> {
    use anyhow::Context;
    let format = job.format.unwrap_or_else(|| {
        if job
            .reports
            .iter()
            .all(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
        {
            Format::Csv
        } else {
            Format::Jsonl
        }
    });
    let mut out: Box<dyn Write> = match &job.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let report = merge(&job.reports, format, &mut out, job.expect.as_deref())?;
    drop(out);
    for p in report.duplicates.iter().take(20) {
        eprintln!("deepscreen: duplicate row for {p} (kept the first)");
    }
    for p in report.missing.iter().take(20) {
        eprintln!("deepscreen: no row for {p}");
    }
    eprintln!(
        "deepscreen: merged {} reports: {} rows, {} duplicates, {} missing{}",
        job.reports.len(),
        report.rows,
        report.duplicates.len(),
        report.missing.len(),
        if job.expect.is_none() {
            " (pass --expect LIST to check for gaps)"
        } else {
            ""
        }
    );
    Ok(report)
}
