//! `deepscreen eval`: score a labelled protocol, report EER, minDCF, ROC AUC and detection at
//! low false-alarm rates (pooled and per attack), false alarms per bona fide source at the
//! model's threshold, write an ASVspoof-style score file, a ROC plot and a DET plot.

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
    use plotters::prelude::*;
    let mut points: Vec<(f64, f64)> = metrics::det_curve(bona, spoof)
        .into_iter()
        .map(|(_, miss, fa)| (fa, 1.0 - miss))
        .collect();
    points.push((1.0, 1.0));
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    svg_chart(path, 560, title, 0.0..1.0, 0.0..1.0, |chart, fail| {
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
        Ok(())
    })
}

/// The chart [`svg_chart`] hands to its drawing closure.
type SvgChart<'a> = plotters::chart::ChartContext<
    'a,
    plotters::backend::SVGBackend<'a>,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// A chart over `x` × `y` in a 640-wide SVG file at `path`, drawn by `draw`, which gets the
/// chart and the error mapping every plotters call needs.
fn svg_chart(
    path: &Path,
    height: u32,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    draw: impl FnOnce(&mut SvgChart<'_>, &dyn Fn(&dyn std::fmt::Display) -> Error) -> Result<()>,
) -> Result<()> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| {
        Error::Audio(format!("{}: cannot draw the plot ({e})", path.display()))
    };
    let root = SVGBackend::new(path, (640, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x, y)
        .map_err(|e| fail(&e))?;
    draw(&mut chart, &fail)?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// The rates a DET plot's axes show, as (label, rate); probit-spaced like the NIST plots.
const DET_TICKS: [(&str, f64); 9] = [
    ("0.1", 0.001),
    ("0.5", 0.005),
    ("1", 0.01),
    ("2", 0.02),
    ("5", 0.05),
    ("10", 0.1),
    ("20", 0.2),
    ("40", 0.4),
    ("60", 0.6),
];

/// Normal deviate of a rate (the DET plot's probit axis), rates clamped to the plotted range.
fn probit(rate: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().inverse_cdf(rate.clamp(DET_TICKS[0].1, DET_TICKS[8].1))
}

/// DET curve (miss rate vs false-alarm rate, both on probit axes, in %) as an SVG file, with
/// the EER line and the model's operating point at `threshold`.
pub fn plot_det(
    path: &Path,
    bona: &[f64],
    spoof: &[f64],
    threshold: f64,
    title: &str,
) -> Result<()> {
    use plotters::prelude::*;
    let points: Vec<(f64, f64)> = metrics::det_curve(bona, spoof)
        .into_iter()
        .map(|(_, miss, fa)| (probit(fa), probit(miss)))
        .collect();
    let (lo, hi) = (probit(0.0), probit(1.0));
    let label = |v: &f64| {
        DET_TICKS
            .iter()
            .min_by(|a, b| (probit(a.1) - v).abs().total_cmp(&(probit(b.1) - v).abs()))
            .map(|t| t.0.to_string())
            .unwrap_or_default()
    };
    let ticks: Vec<f64> = DET_TICKS.iter().map(|t| probit(t.1)).collect();
    svg_chart(path, 600, title, lo..hi, lo..hi, |chart, fail| {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc("false alarm rate, % (bona fide flagged)")
            .y_desc("miss rate, % (spoof passed)")
            .draw()
            .map_err(|e| fail(&e))?;
        // Probit axes: the grid and labels sit at the tick rates.
        for &t in &ticks {
            chart
                .draw_series(LineSeries::new(vec![(t, lo), (t, hi)], &BLACK.mix(0.12)))
                .map_err(|e| fail(&e))?;
            chart
                .draw_series(LineSeries::new(vec![(lo, t), (hi, t)], &BLACK.mix(0.12)))
                .map_err(|e| fail(&e))?;
            let style = ("sans-serif", 12).into_font().color(&BLACK);
            chart
                .draw_series([
                    Text::new(label(&t), (t, lo - 0.12), style.clone()),
                    Text::new(label(&t), (lo - 0.35, t), style),
                ])
                .map_err(|e| fail(&e))?;
        }
        chart
            .draw_series(LineSeries::new(vec![(lo, lo), (hi, hi)], &BLACK.mix(0.3)))
            .map_err(|e| fail(&e))?
            .label("EER line")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.3)));
        chart
            .draw_series(LineSeries::new(points, &BLUE))
            .map_err(|e| fail(&e))?
            .label("DET")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        let fa = metrics::flagged_rate(bona, threshold);
        let miss = 1.0 - metrics::flagged_rate(spoof, threshold);
        chart
            .draw_series([Circle::new((probit(fa), probit(miss)), 5, RED.filled())])
            .map_err(|e| fail(&e))?
            .label(format!(
                "threshold {threshold:.3}: {:.2} % FA, {:.1} % miss",
                100.0 * fa,
                100.0 * miss
            ))
            .legend(|(x, y)| Circle::new((x + 8, y), 4, RED.filled()));
        chart
            .configure_series_labels()
            .border_style(BLACK.mix(0.3))
            .background_style(WHITE)
            .draw()
            .map_err(|e| fail(&e))?;
        Ok(())
    })
}
