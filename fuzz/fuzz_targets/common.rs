//! What the fuzz targets share: a scratch file per process (the code under test reads paths),
//! and one scoring pass of a model that loaded.

#![allow(dead_code)]

use std::path::PathBuf;

use deepscreen::backend::BackendKind;
use deepscreen::model::{Detector, ModelConfig};

/// A file in tmpfs when there is one, unique to this process, named `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("deepscreen-fuzz-{}-{name}", std::process::id()))
}

/// Write `bytes` to the scratch file `name` and return its path.
pub fn scratch_with(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch(name);
    std::fs::write(&path, bytes).expect("scratch file");
    path
}

/// Activations and buffers of one window above this are refused by `screen` on a small
/// machine (`pipeline::check_batch`); the fuzzer does not allocate them either.
const MAX_WINDOW_BYTES: u64 = 256 << 20;

/// Models beyond this many weights are not run: a Whisper-base encoder (20 M) takes seconds
/// per window under the sanitizer, and its forward pass is covered by smaller encoders.
pub const MAX_PARAMS: usize = 4 << 20;

/// The number of weights `config` plans for; None if it overflows.
pub fn params(config: &ModelConfig) -> Option<usize> {
    let plan = deepscreen::model::geometry::plan(config).ok()?;
    plan.tensors.iter().try_fold(0usize, |sum, (_, shape)| {
        let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        sum.checked_add(n)
    })
}

/// A model that loaded must bind to the CPU backend or refuse with an error, and score one
/// window to one number in [0, 1] or NaN (which `screen` turns into an error row).
pub fn score_once(detector: Detector) {
    let info = detector.info();
    let total = info
        .networks
        .iter()
        .map(|n| params(&n.config))
        .try_fold(0usize, |sum, p| sum.checked_add(p?));
    if deepscreen::screen::pipeline::batch_memory(&info, 1, true) > MAX_WINDOW_BYTES
        || total.is_none_or(|p| p > MAX_PARAMS)
    {
        return;
    }
    let n = info.window_samples;
    let window: Vec<f32> = (0..n).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    let Ok(inputs) = deepscreen::audio::NetworkInputs::new(&info).and_then(|mut n| n.of(window))
    else {
        return;
    };
    let inputs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let Ok(scorer) = deepscreen::model::bind(BackendKind::Cpu, detector) else {
        return;
    };
    let Ok(scores) = scorer.submit(&inputs, 1).and_then(|s| scorer.collect(s)) else {
        return;
    };
    assert_eq!(scores.windows.len(), 1, "one window, one score");
    let s = scores.windows[0];
    assert!(
        s.is_nan() || (0.0..=1.0).contains(&s),
        "score {s} outside [0, 1]"
    );
}
