//! The decode path on arbitrary bytes: `audio::read_windows` (probe, demux, decode, resample,
//! silence gate, windows) must return rows or errors, never panic, hang or blow up memory, and
//! every window it emits must be full-length and finite.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use deepscreen::model::DetectorInfo;
use libfuzzer_sys::fuzz_target;

fn info() -> &'static DetectorInfo {
    static INFO: OnceLock<DetectorInfo> = OnceLock::new();
    // A small model (16 kHz, windows of 0.5 s, at least 0.1 s of audio): short seeds reach the
    // resampler, the silence gate and the windows.
    let bytes = include_bytes!("../seeds/model_file/tiny.safetensors");
    INFO.get_or_init(|| {
        let detector = deepscreen::model::file::load_detector(bytes, "tiny").expect("seed model");
        detector.info()
    })
}

fuzz_target!(|data: &[u8]| {
    let info = info();
    // No extension: the probe decides from the bytes alone.
    let path = common::scratch_with("input", data);
    let mut emitted = 0usize;
    let result = deepscreen::audio::read_windows(&path, info, &mut |w| {
        assert_eq!(w.inputs[0].len(), info.networks[0].window_samples, "window length");
        assert!(w.inputs[0].iter().all(|x| x.is_finite()), "non-finite sample");
        assert!(w.start <= w.end, "window ends before it starts");
        emitted += 1;
        Ok(())
    });
    if let Ok(summary) = result {
        assert_eq!(
            summary.windows, emitted,
            "summary counts the windows it sent"
        );
        assert!(summary.duration_s.is_finite() && summary.duration_s >= 0.0);
    }
});
