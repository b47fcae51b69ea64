//! `deepscreen merge`: combine shard outputs into one report, checking that no input has two
//! rows (duplicates) and, given the catalog's list, that every input has one (gaps).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::report::{CSV_HEADER, Entry, Format, Raw, Row, RowReader};
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
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The format of the reports to merge, from their content (`Format::detect`): all must agree,
/// and with `asked` (`--format`) they must be that. Empty reports are left out of the vote;
/// when every report is empty, `asked` or JSON Lines.
pub fn detect_format(inputs: &[PathBuf], asked: Option<Format>) -> Result<Format> {
    let mut found: Option<(Format, &PathBuf)> = None;
    for input in inputs {
        let Some(f) = Format::detect(input)? else {
            continue;
        };
        match found {
            Some((g, first)) if g != f => {
                return Err(Error::Report(format!(
                    "cannot merge a {} report ({}) with a {} report ({}): convert one first",
                    g.name(),
                    first.display(),
                    f.name(),
                    input.display()
                )));
            }
            _ => found = Some((f, input)),
        }
    }
    match (found, asked) {
        (Some((f, input)), Some(a)) if f != a => Err(Error::Report(format!(
            "--format {} was asked for, but {} is {}",
            a.name(),
            input.display(),
            f.name()
        ))),
        (Some((f, _)), _) => Ok(f),
        (None, a) => Ok(a.unwrap_or(Format::Jsonl)),
    }
}

/// Rows of one merged report must share one model and its thresholds, the file score's and
/// the segment rule's (their verdicts would otherwise mean different things).
#[derive(Default)]
struct SameRun {
    first: Option<(String, [Option<f32>; 3], String)>,
}

impl SameRun {
    fn check(&mut self, row: &Row, at: &dyn Fn() -> String) -> Result<()> {
        let shown = |[t, s, v]: [Option<f32>; 3]| {
            let name = |t: Option<f32>| t.map_or("none".to_string(), |t| t.to_string());
            let mut text = name(t);
            if s.is_some() {
                text += &format!(" (segment threshold {})", name(s));
            }
            if v.is_some() {
                text += &format!(" (vocal threshold {})", name(v));
            }
            text
        };
        let thresholds = [row.threshold, row.segment_threshold, row.vocal_threshold];
        match &self.first {
            None => {
                self.first = Some((row.model.clone(), thresholds, at()));
                Ok(())
            }
            Some((m, t, first)) if *m != row.model || *t != thresholds => {
                Err(Error::Report(format!(
                    "{} was written by model {:?} at threshold {}, {first} by model {m:?} at \
                     threshold {}: reports of different runs cannot be merged into one",
                    at(),
                    row.model,
                    shown(thresholds),
                    shown(*t)
                )))
            }
            Some(_) => Ok(()),
        }
    }
}

/// Where merged rows go: JSON lines as they are, or CSV records.
enum Sink<'a> {
    Jsonl(&'a mut dyn Write),
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
}

/// Merge the reports `inputs` (all in `format`) into `out`, each row copied as written. With
/// `expected` (one path per line, as given to `screen --files-from`), paths without a row are
/// reported as missing.
pub fn merge(
    inputs: &[PathBuf],
    format: Format,
    out: &mut dyn Write,
    expected: Option<&Path>,
) -> Result<MergeReport> {
    let mut report = MergeReport::default();
    let mut seen = HashSet::new();
    let mut same = SameRun::default();
    let out_err = |e: std::io::Error| Error::Io {
        path: "<merged output>".into(),
        cause: e,
    };
    let mut sink = match format {
        Format::Jsonl => Sink::Jsonl(&mut *out),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(CSV_HEADER)
                .map_err(|e| Error::Report(format!("<merged output>: {e}")))?;
            Sink::Csv(Box::new(w))
        }
    };
    for input in inputs {
        // Every input's format was checked by `detect_format`; an empty file has no rows.
        if Format::detect(input)?.is_none() {
            continue;
        }
        let file = std::fs::File::open(input).map_err(io(input))?;
        for entry in RowReader::new(file, input, format)? {
            let Entry { row, raw, at } = entry?;
            same.check(&row, &|| format!("{} {at}", input.display()))?;
            // Identity is the exact path bytes (`path_hex` for names that are not UTF-8).
            if !seen.insert(row.path_bytes()) {
                report.duplicates.push(row.path);
                continue;
            }
            report.rows += 1;
            match (&mut sink, raw) {
                (Sink::Jsonl(out), Raw::Line(line)) => writeln!(out, "{line}").map_err(out_err)?,
                (Sink::Csv(w), Raw::Record(mut record)) => {
                    // A report of an older version has the first of the current columns
                    // (`Format::detect` accepts no other header): its rows get the rest empty.
                    while record.len() < CSV_HEADER.len() {
                        record.push_field("");
                    }
                    w.write_record(&record)
                        .map_err(|e| Error::Report(format!("{}: {e}", input.display())))?
                }
                _ => unreachable!("the reader reads the format it was given"),
            }
        }
    }
    match sink {
        Sink::Jsonl(out) => out.flush().map_err(out_err)?,
        Sink::Csv(mut w) => w.flush().map_err(out_err)?,
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
            if !seen.contains(&line) {
                report
                    .missing
                    .push(String::from_utf8_lossy(&line).into_owned());
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
    /// Checked against what the reports hold [default: their format, found from the content]
    pub format: Option<Format>,
    /// The catalog's path list, to report inputs with no row.
    pub expect: Option<PathBuf>,
}

/// `deepscreen merge`: write the merged report and tell on standard error what was merged,
/// duplicated and missing (the first 20 of each named).
pub fn run(job: &MergeJob) -> anyhow::Result<MergeReport> {
    use anyhow::Context;
    let format = detect_format(&job.reports, job.format)?;
    let report = match &job.output {
        Some(path) => {
            if let Some(input) = job
                .reports
                .iter()
                .find(|r| super::inputs::same_file(r, path))
            {
                anyhow::bail!(
                    "-o {} is also a report to merge ({}): it would be overwritten",
                    path.display(),
                    input.display()
                );
            }
            // Written beside the target and renamed over it once complete: a failed or killed
            // merge leaves whatever was at -o untouched.
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let tmp = path.with_file_name(format!(".{name}.merging-{}", std::process::id()));
            let result = (|| -> anyhow::Result<MergeReport> {
                let file = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let mut out = std::io::BufWriter::new(file);
                let report = merge(&job.reports, format, &mut out, job.expect.as_deref())?;
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(report)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            merge(&job.reports, format, &mut out, job.expect.as_deref())?
        }
    };
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
