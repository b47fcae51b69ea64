//! `deepscreen eval`: score a labelled protocol, report EER, minDCF, ROC AUC and detection at
//! low false-alarm rates (pooled and per attack), false alarms per bona fide source at the
//! model's threshold, write an ASVspoof-style score file, a ROC plot and a DET plot.

pub mod command;
pub mod protocol;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::metrics;
use crate::{Error, Result};
use protocol::Trial;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub bona_fide: usize,
    pub spoof: usize,
    pub eer: f64,
    /// Score threshold (calibrated probability) at the EER point.
    pub eer_threshold: f64,
    pub min_dcf: f64,
    pub roc_auc: f64,
    /// Detection rate (spoof flagged) at ≤ 1 % and ≤ 0.1 % false alarms.
    pub detection_at_1pct_fa: f64,
    pub detection_at_0_1pct_fa: f64,
    /// At the model's default threshold: bona fide flagged, spoof flagged.
    pub false_alarm_rate: f64,
    pub detection_rate: f64,
}

/// Bona fide trials of one source at the model's threshold.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceFalseAlarms {
    pub bona_fide: usize,
    pub flagged: usize,
    pub false_alarm_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The model's default threshold, at which the `*_rate` fields are taken.
    pub threshold: f64,
    pub pooled: Metrics,
    /// Each attack's spoofs against all bona fide trials.
    pub per_attack: BTreeMap<String, Metrics>,
    /// False alarms of each bona fide source (the protocol's `source`/`speaker` column).
    pub per_source: BTreeMap<String, SourceFalseAlarms>,
    /// Trials that could not be scored (excluded from the metrics).
    pub failed: usize,
}

pub fn metrics(bona: &[f64], spoof: &[f64], threshold: f64) -> Metrics {
    let (eer, eer_threshold) = metrics::eer(bona, spoof);
    Metrics {
        bona_fide: bona.len(),
        spoof: spoof.len(),
        eer,
        eer_threshold,
        min_dcf: metrics::min_dcf(bona, spoof),
        roc_auc: metrics::roc_auc(bona, spoof),
        detection_at_1pct_fa: metrics::detection_at_fa(bona, spoof, 0.01),
        detection_at_0_1pct_fa: metrics::detection_at_fa(bona, spoof, 0.001),
        false_alarm_rate: metrics::flagged_rate(bona, threshold),
        detection_rate: metrics::flagged_rate(spoof, threshold),
    }
}

/// Metrics from trials and their scores (`None` = the trial could not be scored), with rates at
/// `threshold`.
pub fn report(trials: &[Trial], scores: &[Option<f64>], threshold: f64) -> Result<Report> {
    let mut bona = Vec::new();
    let mut bona_by_source: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut spoof_by_attack: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut failed = 0;
    for (t, s) in trials.iter().zip(scores) {
        match s {
            None => failed += 1,
            Some(s) if t.spoof => spoof_by_attack
                .entry(t.attack.clone())
                .or_default()
                .push(*s),
            Some(s) => {
                bona.push(*s);
                bona_by_source.entry(t.source.clone()).or_default().push(*s);
            }
        }
    }
    let all_spoof: Vec<f64> = spoof_by_attack.values().flatten().copied().collect();
    if bona.is_empty() || all_spoof.is_empty() {
        return Err(Error::Audio(format!(
            "need scored bona fide and spoof trials, got {} and {}",
            bona.len(),
            all_spoof.len()
        )));
    }
    Ok(Report {
        threshold,
        pooled: metrics(&bona, &all_spoof, threshold),
        per_attack: spoof_by_attack
            .iter()
            .map(|(a, s)| (a.clone(), metrics(&bona, s, threshold)))
            .collect(),
        per_source: bona_by_source
            .into_iter()
            .map(|(source, scores)| {
                let flagged = scores.iter().filter(|&&s| s >= threshold).count();
                let entry = SourceFalseAlarms {
                    bona_fide: scores.len(),
                    flagged,
                    false_alarm_rate: flagged as f64 / scores.len() as f64,
                };
                (source, entry)
            })
            .collect(),
        failed,
    })
}

/// ASVspoof-style score file: `ID ATTACK KEY SCORE` per scored trial, where SCORE follows
/// ASVspoof's convention (higher = more bona fide): ln((1 − p) / p) of the synthetic probability p.
pub fn write_scores(
    out: &mut dyn Write,
    trials: &[Trial],
    scores: &[Option<f64>],
) -> std::io::Result<()> {
    for (t, s) in trials.iter().zip(scores) {
        if let Some(p) = s {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            let key = if t.spoof { "spoof" } else { "bonafide" };
            writeln!(
                out,
                "{} {} {} {:.6}",
                t.id,
                t.attack,
                key,
                ((1.0 - p) / p).ln()
            )?;
        }
    }
    Ok(())
}

/// ROC curve (false-alarm rate vs detection rate) as an SVG file.
pub fn plot_roc(path: &Path, bona: &[f64], spoof: &[f64], title: &str) -> Result<()> {
    write_svg(path, crate::plot::roc_svg(bona, spoof, title)?)
}

/// DET curve (probit axes, with the EER line and the operating point at `threshold`) as an
/// SVG file.
pub fn plot_det(
    path: &Path,
    bona: &[f64],
    spoof: &[f64],
    threshold: f64,
    title: &str,
) -> Result<()> {
    write_svg(path, crate::plot::det_svg(bona, spoof, threshold, title)?)
}

fn write_svg(path: &Path, svg: String) -> Result<()> {
    std::fs::write(path, svg).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })
}
