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
use crate::screen::vocals::VocalChoice;

/// What to evaluate (the `eval` command's options).
#[derive(Debug, Clone)]
pub struct EvalJob {
    pub protocol: PathBuf,
    pub format: ProtocolFormat,
    /// Directory the protocol's audio paths are relative to [default: the protocol's].
    pub audio_dir: Option<PathBuf>,
    /// Embedded model name or model file.
    pub model: String,
    /// A fused model's cascade off: every member scores every window.
    pub exact: bool,
    pub backend: BackendKind,
    /// Windows per backend call [default: `pipeline::DEFAULT_BATCH`].
    pub batch: Option<usize>,
    /// Write an ASVspoof-style score file here.
    pub scores: Option<PathBuf>,
    /// Draw the pooled ROC curve here (SVG).
    pub plot: Option<PathBuf>,
    /// Draw the pooled DET curve (probit axes) here (SVG).
    pub det: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    pub json: bool,
    /// The vocal stage, as `screen` runs it (its scores lift the file score).
    pub vocals: VocalChoice,
}

/// Score every trial of the protocol and write the report to `out`. Trials that cannot be
/// scored are named on standard error and counted in `Report::failed`.
pub fn run(job: &EvalJob, out: &mut dyn Write) -> anyhow::Result<Report> {
    let trials = protocol::read(&job.protocol, job.format, job.audio_dir.as_deref())?;
    if trials.is_empty() {
        bail!("{}: no trials", job.protocol.display());
    }
    let scorer = model::open(&job.model, job.backend, job.exact)?;
    let batch = pipeline::chosen_batch(job.batch, scorer.as_ref())?;
    let vocals = job
        .vocals
        .open(scorer.info().sample_rate, job.backend)?
        .map(|stage| pipeline::Vocals(std::sync::Arc::from(stage)));
    let opts = ScreenOptions {
        batch,
        decoders: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threshold: scorer.info().threshold,
        // Eval measures file scores (EER, detection at false-alarm rates): the segment rule,
        // a second route to a verdict, is measured by training/segment_rule.py.
        segment_rule: None,
        segments: false,
        ordered: true,
        stop: None,
        decoding: None,
        vocals,
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
    let threshold = f64::from(scorer.info().threshold);
    let report = super::report(&trials, &scores, threshold)?;
    if let Some(path) = &job.scores {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        super::write_scores(&mut f, &trials, &scores)?;
        f.flush()?;
    }
    if job.plot.is_some() || job.det.is_some() {
        let (bona, spoof): (Vec<_>, Vec<_>) = trials
            .iter()
            .zip(&scores)
            .filter_map(|(t, s)| s.map(|s| (t.spoof, s)))
            .partition(|(spoof, _)| !spoof);
        let strip = |v: Vec<(bool, f64)>| v.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
        let (bona, spoof) = (strip(bona), strip(spoof));
        let title = format!("{} on {}", scorer.info().id, job.protocol.display());
        if let Some(path) = &job.plot {
            super::plot_roc(path, &bona, &spoof, &title)?;
        }
        if let Some(path) = &job.det {
            super::plot_det(path, &bona, &spoof, threshold, &title)?;
        }
    }
    if job.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write_table(&report, out)?;
    }
    Ok(report)
}

/// Per-attack and pooled metrics, one line each, then false alarms per bona fide source.
fn write_table(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20} {:>6} {:>6} {:>7} {:>7} {:>7} {:>9} {:>10} {:>8}",
        "attack", "bona", "spoof", "EER %", "minDCF", "AUC", "det@1%FA", "det@0.1%FA", "det@thr"
    )?;
    // A detection rate "at 0.1 % false alarms" needs 1,000 bona fide trials to mean that: with
    // fewer, the only false-alarm rate below it is zero. Such figures are marked.
    let mut coarse = false;
    let mut at_fa = |rate: f64, fa: f64, m: &Metrics| {
        if (m.bona_fide as f64) < 1.0 / fa {
            coarse = true;
            format!("{:.1}%*", 100.0 * rate)
        } else {
            format!("{:.1}%", 100.0 * rate)
        }
    };
    let mut rows = Vec::new();
    for (name, m) in report
        .per_attack
        .iter()
        .map(|(a, m)| (a.as_str(), m))
        .chain([("pooled", &report.pooled)])
    {
        rows.push(format!(
            "{:<20} {:>6} {:>6} {:>7.2} {:>7.4} {:>7.4} {:>9} {:>10} {:>7.1}%",
            name,
            m.bona_fide,
            m.spoof,
            100.0 * m.eer,
            m.min_dcf,
            m.roc_auc,
            at_fa(m.detection_at_1pct_fa, 0.01, m),
            at_fa(m.detection_at_0_1pct_fa, 0.001, m),
            100.0 * m.detection_rate,
        ));
    }
    for row in rows {
        writeln!(out, "{row}")?;
    }
    if coarse {
        writeln!(
            out,
            "* fewer bona fide trials than the rate needs (100 for 1 %, 1,000 for 0.1 %): the \
             figure is detection with no false alarm among those {} trials, not at that rate",
            report.pooled.bona_fide
        )?;
    }
    writeln!(
        out,
        "\nfalse alarms at the model's threshold {:.4}: {:.2} % of {} bona fide",
        report.threshold,
        100.0 * report.pooled.false_alarm_rate,
        report.pooled.bona_fide
    )?;
    if report.per_source.len() > 1 || !report.per_source.contains_key("-") {
        writeln!(
            out,
            "{:<28} {:>6} {:>8} {:>8}",
            "bona fide source", "trials", "flagged", "FA %"
        )?;
        for (source, s) in &report.per_source {
            writeln!(
                out,
                "{:<28} {:>6} {:>8} {:>8.2}",
                source,
                s.bona_fide,
                s.flagged,
                100.0 * s.false_alarm_rate
            )?;
        }
    }
    if report.failed > 0 {
        writeln!(
            out,
            "{} trials could not be scored and are excluded",
            report.failed
        )?;
    }
    Ok(())
}
