//! `deepscreen eval`: score a labelled protocol, report EER, minDCF and ROC AUC (pooled and per
//! attack), write an ASVspoof-style score file and a ROC plot.

pub mod command;
pub mod metrics;
pub mod protocol;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

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
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub pooled: Metrics,
    /// Each attack's spoofs against all bona fide trials.
    pub per_attack: BTreeMap<String, Metrics>,
    /// Trials that could not be scored (excluded from the metrics).
    pub failed: usize,
}

pub fn metrics(bona: &[f64], spoof: &[f64]) -> Metrics {
    let (eer, eer_threshold) = metrics::eer(bona, spoof);
    Metrics {
        bona_fide: bona.len(),
        spoof: spoof.len(),
        eer,
        eer_threshold,
        min_dcf: metrics::min_dcf(bona, spoof),
        roc_auc: metrics::roc_auc(bona, spoof),
    }
}

/// Metrics from trials and their scores (`None` = the trial could not be scored).
pub fn report(trials: &[Trial], scores: &[Option<f64>]) -> Result<Report> {
    let mut bona = Vec::new();
    let mut spoof_by_attack: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut failed = 0;
    for (t, s) in trials.iter().zip(scores) {
        match s {
            None => failed += 1,
            Some(s) if t.spoof => spoof_by_attack
                .entry(t.attack.clone())
                .or_default()
                .push(*s),
            Some(s) => bona.push(*s),
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
        pooled: metrics(&bona, &all_spoof),
        per_attack: spoof_by_attack
            .iter()
            .map(|(a, s)| (a.clone(), metrics(&bona, s)))
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
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| {
        Error::Audio(format!("{}: cannot draw the plot ({e})", path.display()))
    };
    let mut points: Vec<(f64, f64)> = metrics::det_curve(bona, spoof)
        .into_iter()
        .map(|(_, miss, fa)| (fa, 1.0 - miss))
        .collect();
    points.push((1.0, 1.0));
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let root = SVGBackend::new(path, (640, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("false alarm rate (bona fide flagged)")
        .y_desc("detection rate (spoof flagged)")
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(points, &BLUE))
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            &BLACK.mix(0.3),
        ))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
