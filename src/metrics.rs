//! Detection metrics, with "positive" = spoof (synthetic) and higher scores = more synthetic.
//!
//! - EER as ASVspoof computes it: over every threshold (each distinct score), the miss rate
//!   (spoof scored below) and false-alarm rate (bona fide scored at or above); at the threshold
//!   where |miss − fa| is smallest, EER = (miss + fa) / 2.
//! - minDCF with the ASVspoof 5 costs: DCF = Cmiss·(1−π)·Pmiss + Cfa·π·Pfa with Cmiss = 1,
//!   Cfa = 10, π (prior of spoof) = 0.05, normalised by min(Cmiss·(1−π), Cfa·π) and minimised
//!   over thresholds. Here "miss" means a spoof accepted as bona fide and "false alarm" a bona
//!   fide flagged as spoof.
//! - ROC AUC: probability that a random spoof scores above a random bona fide (ties count ½).

/// ASVspoof 5 detection costs.
pub const C_MISS: f64 = 1.0;
pub const C_FA: f64 = 10.0;
pub const P_SPOOF: f64 = 0.05;

/// (threshold, miss rate, false-alarm rate) for every candidate threshold, ascending.
/// A score ≥ threshold is called spoof.
pub fn det_curve(bona: &[f64], spoof: &[f64]) -> Vec<(f64, f64, f64)> {
    let mut thresholds: Vec<f64> = bona
        .iter()
        .chain(spoof)
        .copied()
        .filter(|s| s.is_finite())
        .collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    thresholds.push(f64::INFINITY); // everything called bona fide
    let mut b = bona.to_vec();
    let mut s = spoof.to_vec();
    b.sort_by(f64::total_cmp);
    s.sort_by(f64::total_cmp);
    let below = |v: &[f64], t: f64| v.partition_point(|x| *x < t);
    thresholds
        .into_iter()
        .map(|t| {
            let miss = below(&s, t) as f64 / s.len().max(1) as f64;
            let fa = (b.len() - below(&b, t)) as f64 / b.len().max(1) as f64;
            (t, miss, fa)
        })
        .collect()
}

/// Equal error rate and the threshold where it is reached.
pub fn eer(bona: &[f64], spoof: &[f64]) -> (f64, f64) {
    let curve = det_curve(bona, spoof);
    let best = curve
        .iter()
        .min_by(|a, b| (a.1 - a.2).abs().total_cmp(&(b.1 - b.2).abs()))
        .copied()
        .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
    ((best.1 + best.2) / 2.0, best.0)
}

/// Normalised minimum detection cost (ASVspoof 5 costs).
pub fn min_dcf(bona: &[f64], spoof: &[f64]) -> f64 {
    let norm = (C_MISS * (1.0 - P_SPOOF)).min(C_FA * P_SPOOF);
    det_curve(bona, spoof)
        .iter()
        .map(|&(_, miss, fa)| (C_MISS * (1.0 - P_SPOOF) * miss + C_FA * P_SPOOF * fa) / norm)
        .fold(f64::INFINITY, f64::min)
}

/// Highest detection rate (spoof flagged) at a false-alarm rate of at most `max_fa`.
pub fn detection_at_fa(bona: &[f64], spoof: &[f64], max_fa: f64) -> f64 {
    det_curve(bona, spoof)
        .iter()
        .filter(|&&(_, _, fa)| fa <= max_fa)
        .map(|&(_, miss, _)| 1.0 - miss)
        .fold(0.0, f64::max)
}

/// Share of `scores` at or above `threshold` (called spoof).
pub fn flagged_rate(scores: &[f64], threshold: f64) -> f64 {
    scores.iter().filter(|&&s| s >= threshold).count() as f64 / scores.len().max(1) as f64
}

/// Area under the ROC curve (Mann–Whitney statistic).
pub fn roc_auc(bona: &[f64], spoof: &[f64]) -> f64 {
    let mut b = bona.to_vec();
    b.sort_by(f64::total_cmp);
    let mut wins = 0.0;
    for &s in spoof {
        let lower = b.partition_point(|x| *x < s);
        let upper = b.partition_point(|x| *x <= s);
        wins += lower as f64 + 0.5 * (upper - lower) as f64;
    }
    wins / (bona.len().max(1) * spoof.len().max(1)) as f64
}
