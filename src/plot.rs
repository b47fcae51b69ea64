//! Charts as SVG text (plotters): the ROC and DET curves of `eval`, and the review page's
//! histogram, timelines and band maps.

use crate::metrics;
use crate::{Error, Result};

/// ROC curve (false-alarm rate vs detection rate) as SVG.
pub fn roc_svg(bona: &[f64], spoof: &[f64], title: &str) -> Result<String> {
    use plotters::prelude::*;
    let mut points: Vec<(f64, f64)> = metrics::det_curve(bona, spoof)
        .into_iter()
        .map(|(_, miss, fa)| (fa, 1.0 - miss))
        .collect();
    points.push((1.0, 1.0));
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    svg_chart(640, 560, title, 0.0..1.0, 0.0..1.0, |chart, fail| {
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
pub type SvgChart<'a> = plotters::chart::ChartContext<
    'a,
    plotters::backend::SVGBackend<'a>,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// A `width` × `height` SVG chart over `x` × `y`, drawn by `draw`, which gets the chart and
/// the error mapping every plotters call needs.
pub fn svg_chart(
    width: u32,
    height: u32,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    draw: impl FnOnce(&mut SvgChart<'_>, &dyn Fn(&dyn std::fmt::Display) -> Error) -> Result<()>,
) -> Result<String> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| Error::Report(format!("cannot draw {title:?} ({e})"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
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
    }
    Ok(svg)
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

/// DET curve (miss rate vs false-alarm rate, both on probit axes, in %) as SVG, with the EER
/// line and the model's operating point at `threshold`.
pub fn det_svg(bona: &[f64], spoof: &[f64], threshold: f64, title: &str) -> Result<String> {
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
    svg_chart(640, 600, title, lo..hi, lo..hi, |chart, fail| {
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

/// One group of a histogram: label, colour (RGB) and its scores.
pub type HistogramGroup<'a> = (&'a str, (u8, u8, u8), Vec<f64>);

/// Score histogram of a report, one colour per verdict, counts on a log axis (so the few
/// flagged files of a large catalog stay visible).
pub fn histogram_svg(groups: &[HistogramGroup<'_>], threshold: f64) -> Result<String> {
    use plotters::prelude::*;
    const BINS: usize = 50;
    let counts: Vec<[u32; BINS]> = groups
        .iter()
        .map(|(_, _, scores)| {
            let mut c = [0u32; BINS];
            for &s in scores {
                c[((s.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1)] += 1;
            }
            c
        })
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let title = "scores by verdict (files per bin, log scale)";
    let fail = |e: &dyn std::fmt::Display| Error::Report(format!("cannot draw {title:?} ({e})"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, (0.8..top * 1.5).log_scale())
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .light_line_style(BLACK.mix(0.04))
            .x_desc("score (probability synthetic)")
            .y_desc("files")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| fail(&e))?;
        let width = 1.0 / BINS as f64;
        for ((label, (r, g, b), _), c) in groups.iter().zip(&counts) {
            let colour = RGBColor(*r, *g, *b);
            chart
                .draw_series(
                    c.iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .map(|(i, &n)| {
                            let x = i as f64 * width;
                            Rectangle::new(
                                [(x, 0.8), (x + width, n as f64)],
                                colour.mix(0.6).filled(),
                            )
                        }),
                )
                .map_err(|e| fail(&e))?
                .label(format!("{label} ({})", c.iter().sum::<u32>()))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                vec![(threshold, 0.8), (threshold, top * 1.5)],
                BLACK.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(format!("threshold {threshold:.3}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperMiddle)
            .border_style(BLACK.mix(0.3))
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// Window scores over a file: one bar per window at its score (overlapping windows overlap),
/// the threshold, and the most suspicious window outlined. `windows`: (start s, end s, score).
pub fn timeline_svg(
    windows: &[(f64, f64, f32)],
    duration_s: f64,
    threshold: f64,
    highlight: Option<(f64, f64)>,
) -> Result<String> {
    use plotters::prelude::*;
    let end = windows
        .iter()
        .map(|w| w.1)
        .fold(duration_s, f64::max)
        .max(1e-3);
    svg_chart(
        400,
        200,
        "window scores",
        0.0..end,
        0.0..1.0,
        |chart, fail| {
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc("time, s")
                .y_labels(3)
                .draw()
                .map_err(|e| fail(&e))?;
            chart
                .draw_series(windows.iter().map(|&(a, b, s)| {
                    let colour = if s as f64 >= threshold { RED } else { GREEN };
                    Rectangle::new([(a, 0.0), (b, s as f64)], colour.mix(0.25).filled())
                }))
                .map_err(|e| fail(&e))?;
            if let Some((a, b)) = highlight {
                chart
                    .draw_series([Rectangle::new([(a, 0.0), (b, 1.0)], BLACK.stroke_width(2))])
                    .map_err(|e| fail(&e))?;
            }
            chart
                .draw_series(LineSeries::new(
                    vec![(0.0, threshold), (end, threshold)],
                    BLACK.mix(0.6),
                ))
                .map_err(|e| fail(&e))?;
            Ok(())
        },
    )
}

/// The occlusion map as horizontal bars: for each band (low frequencies at the bottom), how
/// much the window's score drops when that band is removed. `bands`: (label, drop).
pub fn bands_svg(bands: &[(String, f64)]) -> Result<String> {
    use plotters::prelude::*;
    let lo = bands.iter().map(|b| b.1).fold(0.0, f64::min);
    let hi = bands.iter().map(|b| b.1).fold(0.05, f64::max) * 1.05;
    let n = bands.len();
    let title = "score drop without band";
    let fail = |e: &dyn std::fmt::Display| Error::Report(format!("cannot draw {title:?} ({e})"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (300, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(78)
            .build_cartesian_2d(lo..hi, -0.5..n as f64 - 0.5)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .x_labels(4)
            .y_labels(n + 1)
            .y_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                    bands[i as usize].0.clone()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(bands.iter().enumerate().map(|(i, b)| {
                let colour = if b.1 > 0.0 { RED } else { BLUE };
                let y = i as f64;
                Rectangle::new([(0.0, y - 0.35), (b.1, y + 0.35)], colour.mix(0.6).filled())
            }))
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}
