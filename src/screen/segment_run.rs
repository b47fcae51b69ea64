//! The segment rule's evidence in a file (partial fakes): its strongest run of consecutive
//! window scores, tracked as the windows arrive, in order.

use std::collections::VecDeque;

/// A run of consecutive windows: its lowest score (every window of it scores at least this)
/// and the samples it spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub score: f32,
    pub start: u64,
    pub end: u64,
}

/// The strongest run of `windows` consecutive scored windows: the highest `r` such that some
/// run of that many windows all score at least `r`. The first such run is kept on a tie.
#[derive(Debug, Clone)]
pub struct StrongestRun {
    windows: usize,
    recent: VecDeque<(u64, u64, f32)>,
    best: Option<Run>,
}

impl StrongestRun {
    pub fn new(windows: usize) -> Self {
        StrongestRun {
            windows: windows.max(1),
            recent: VecDeque::with_capacity(windows.max(1) + 1),
            best: None,
        }
    }

    /// The next window's span and score (windows come in file order).
    pub fn push(&mut self, start: u64, end: u64, score: f32) {
        self.recent.push_back((start, end, score));
        if self.recent.len() > self.windows {
            self.recent.pop_front();
        }
        if self.recent.len() < self.windows {
            return;
        }
        // A few windows per run: the minimum is taken afresh.
        let low = self
            .recent
            .iter()
            .map(|w| w.2)
            .fold(f32::INFINITY, f32::min);
        if self.best.is_none_or(|b| low > b.score) {
            self.best = Some(Run {
                score: low,
                start: self.recent[0].0,
                end: end.max(self.recent[0].1),
            });
        }
    }

    /// None while fewer than `windows` windows were scored.
    pub fn best(&self) -> Option<Run> {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Max over every run of `k` consecutive scores of the run's minimum, by brute force.
    fn naive(scores: &[f32], k: usize) -> Option<(f32, usize)> {
        let last = scores.len().checked_sub(k)?;
        (0..=last)
            .map(|i| {
                (
                    scores[i..i + k]
                        .iter()
                        .copied()
                        .fold(f32::INFINITY, f32::min),
                    i,
                )
            })
            .fold(None, |best: Option<(f32, usize)>, (low, i)| match best {
                Some((b, _)) if b >= low => best,
                _ => Some((low, i)),
            })
    }

    #[test]
    fn matches_brute_force_on_random_scores() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32) / (1u64 << 31) as f32
        };
        for k in 1..=4 {
            for n in 0..12 {
                let scores: Vec<f32> = (0..n).map(|_| next()).collect();
                let mut run = StrongestRun::new(k);
                for (i, &s) in scores.iter().enumerate() {
                    // 4 s windows every 2 s (overlapping), in samples at 1 kHz.
                    run.push(i as u64 * 2000, i as u64 * 2000 + 4000, s);
                }
                match (run.best(), naive(&scores, k)) {
                    (None, None) => {}
                    (Some(r), Some((low, i))) => {
                        assert_eq!(r.score, low, "k {k}, {scores:?}");
                        assert_eq!(r.start, i as u64 * 2000);
                        assert_eq!(r.end, (i + k - 1) as u64 * 2000 + 4000);
                    }
                    (a, b) => panic!("k {k}, n {n}: {a:?} vs {b:?}"),
                }
            }
        }
    }

    #[test]
    fn a_single_high_window_is_not_a_run_of_two() {
        let mut run = StrongestRun::new(2);
        for (i, s) in [0.1, 0.95, 0.2, 0.6, 0.7, 0.1].into_iter().enumerate() {
            run.push(i as u64, i as u64 + 1, s);
        }
        let best = run.best().unwrap();
        assert_eq!((best.score, best.start, best.end), (0.6, 3, 5));
    }
}
