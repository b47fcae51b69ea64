//! `deepscreen eval` as a library call: score a labelled protocol with a model, print the
//! metrics table (or JSON), and write the score file and ROC plot when asked.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::protocol::{self, ProtocolFormat};
use super::{Metrics, Report};
use crate::backend::BackendKind;
use crate::model;
use crate::screen::inputs;
use crate::screen::pipeline::{self, ScreenOptions};

/// What to evaluate (the `eval` command's options).
#[derive(Debug, Clone)]
pub struct EvalJob {
    pub protocol: PathBuf,
    pub format: ProtocolFormat,
    /// Directory the protocol's audio paths are relative to [default: the protocol's].
    pub audio_dir: Option<PathBuf>,
    /// Embedded model name or model file.
    pub model: String,
    pub backend: BackendKind,
    /// Windows per backend call.
    pub batch: usize,
    /// Write an ASVspoof-style score file here.
    pub scores: Option<PathBuf>,
    /// Draw the pooled ROC curve here (SVG).
    pub plot: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    pub json: bool,
}

/// Score every trial of the protocol and write the report to `out`. Trials that cannot be
/// scored are named on standard error and counted in `Report::failed`.
pub fn run(job: &EvalJob, out: &mut dyn Write) -> anyhow::Result<Report> {
    let trials = protocol::read(&job.protocol, job.format, job.audio_dir.as_deref())?;
    if trials.is_empty() {
        bail!("{}: no trials", job.protocol.display());
    }
    let spec = model::resolve(&job.model)?;
    let scorer = model::bind(job.backend, spec)?;
    let opts = ScreenOptions {
        batch: job.batch.max(1),
        decoders: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threshold: scorer.spec().config.threshold,
        segments: false,
        ordered: true,
    };
    let inputs: inputs::Inputs = Box::new(
        trials
            .iter()
            .map(|t| inputs::Input::File(t.path.clone()))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    let mut scores = Vec::with_capacity(trials.len());
    pipeline::run(inputs, scorer.as_ref(), &opts, &mut |row| {
        if let Some(e) = &row.error {
            eprintln!("deepscreen: {}: {e}", row.path);
        }
        scores.push(row.score.map(f64::from));
        Ok(())
    })?;
    let report = super::report(&trials, &scores)?;
    if let Some(path) = &job.scores {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        super::write_scores(&mut f, &trials, &scores)?;
        f.flush()?;
    }
    if let Some(path) = &job.plot {
        let (bona, spoof): (Vec<_>, Vec<_>) = trials
            .iter()
            .zip(&scores)
            .filter_map(|(t, s)| s.map(|s| (t.spoof, s)))
            .partition(|(spoof, _)| !spoof);
        let strip = |v: Vec<(bool, f64)>| v.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
        let title = format!("{} on {}", scorer.spec().config.id, job.protocol.display());
        super::plot_roc(path, &strip(bona), &strip(spoof), &title)?;
    }
    if job.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write_table(&report, out)?;
    }
    Ok(report)
}

/// Per-attack and pooled metrics, one line each.
fn write_table(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:>7} {:>7} {:>8} {:>8} {:>8}",
        "attack", "bona", "spoof", "EER %", "minDCF", "AUC"
    )?;
    let mut line = |name: &str, m: &Metrics| {
        writeln!(
            out,
            "{:<16} {:>7} {:>7} {:>8.2} {:>8.4} {:>8.4}",
            name,
            m.bona_fide,
            m.spoof,
            100.0 * m.eer,
            m.min_dcf,
            m.roc_auc
        )
    };
    for (attack, m) in &report.per_attack {
        line(attack, m)?;
    }
    line("pooled", &report.pooled)?;
    if report.failed > 0 {
        writeln!(
            out,
            "{} trials could not be scored and are excluded",
            report.failed
        )?;
    }
    Ok(())
}
