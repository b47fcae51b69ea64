//! The vocal stage of a music screen (voices inside music, `screen --vocals`): a real sung
//! voice over a synthetic backing passes the gate and is judged, the backing alone does not,
//! the row's fields agree with the separator's own presence test, and the vocal verdict, the
//! file score, resume and the review page follow the vocal threshold.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{bin, write_wav};
use deepscreen::backend::cpu::CpuBackend;
use deepscreen::model::separator::{Separator, load};
use deepscreen::screen::pipeline::vocal_on_file_scale;
use deepscreen::screen::vocals::{GATE_BINS, GATE_EVERY, GATE_SHARE, SEPARATOR};

const RATE: u32 = 44_100;
const SECONDS: f32 = 10.0;

/// The sung scale of `tests/fixtures/sung_scale.opus` (a real voice), mono at 44.1 kHz.
fn sung_voice() -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sung_scale.opus");
    let mut voice = Vec::new();
    deepscreen::audio::decode_resampled(&path, RATE, &mut |x| {
        voice.extend_from_slice(x);
        Ok(())
    })
    .unwrap();
    voice
}

/// A backing without a voice: plucked bass and chord notes (decaying harmonic tones, a new
/// note every quarter second) and noise hits, in stereo.
fn backing(i: usize, channel: u16) -> f32 {
    let t = i as f32 / RATE as f32;
    let beat = (t * 4.0).floor();
    let since = t - beat / 4.0;
    let roots = [110.0f32, 146.8, 130.8, 98.0];
    let root = roots[(beat as usize / 4) % roots.len()];
    let pluck = |f: f32, decay: f32| {
        let env = (-since * decay).exp();
        (1..6)
            .map(|h| (2.0 * std::f32::consts::PI * f * h as f32 * since).sin() / h as f32)
            .sum::<f32>()
            * env
    };
    let chord = [1.0, 1.26, 1.5]
        .iter()
        .map(|r| pluck(2.0 * root * r, 9.0))
        .sum::<f32>();
    // Deterministic noise for the hits (integer hash).
    let noise = ((i as u64 * 2654435761 + channel as u64 * 97) % 65536) as f32 / 32768.0 - 1.0;
    let hit = if beat as usize % 2 == 1 {
        noise * (-since * 40.0).exp()
    } else {
        0.0
    };
    0.12 * pluck(root, 5.0) + 0.05 * chord + 0.1 * hit
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// `name`: the backing alone (`voice_db` None) or with the sung voice laid over it `voice_db`
/// from the backing's loudness (0 dB: as loud, as in the trials), as a 44.1 kHz stereo
/// WAV.
fn write_song(dir: &Path, name: &str, voice_db: Option<f32>) -> PathBuf {
    let frames = (SECONDS * RATE as f32) as usize;
    let bed: Vec<f32> = (0..frames).map(|i| backing(i, 0)).collect();
    let sung = sung_voice();
    let gain = voice_db.map_or(0.0, |db| rms(&bed) / rms(&sung) * 10f32.powf(db / 20.0));
    let path = dir.join(name);
    write_wav(&path, RATE, 2, frames, true, |i, c| {
        backing(i, c) + gain * sung.get(i).copied().unwrap_or(0.0)
    });
    path
}

fn screen(file: &Path, args: &[&str]) -> (Value, std::process::Output) {
    let out = bin()
        .args(["screen", "--model", "music", "-b", "cpu", "--no-progress"])
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout
        .lines()
        .next()
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or(Value::Null);
    (row, out)
}

fn f(row: &Value, key: &str) -> Option<f64> {
    row[key].as_f64()
}

/// What the stage's gate sees: the file as it decodes it (mono, 44.1 kHz), through the
/// separator's own presence test.
fn presence_shares(file: &Path) -> Vec<f32> {
    let mut mono = Vec::new();
    deepscreen::audio::decode::decode_mono(file, |_, x| {
        mono.extend_from_slice(x);
        Ok(())
    })
    .unwrap();
    let be = CpuBackend::new();
    let separator = Separator::new(&be, &load(SEPARATOR, "embedded").unwrap()).unwrap();
    separator
        .vocal_presence(&be, &[&mono], GATE_EVERY, GATE_BINS)
        .unwrap()
        .iter()
        .map(|s| s.share)
        .collect()
}

#[test]
fn a_sung_voice_over_a_backing_is_separated_and_judged_the_backing_alone_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let song = write_song(tmp.path(), "song.wav", Some(0.0));
    let backing = write_song(tmp.path(), "backing.wav", None);

    let (row, out) = screen(&song, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let share = f(&row, "vocal_share").expect("a music screen runs the vocal stage");
    assert!(
        share >= GATE_SHARE as f64,
        "the sung voice passes the gate: {row}"
    );
    // The row's share is the separator's presence test on the decoded file (one segment).
    let shares = presence_shares(&song);
    assert_eq!(shares.len(), 1);
    assert!(
        (share - shares[0] as f64).abs() < 1e-6,
        "{share} vs {shares:?}"
    );
    let vocal = f(&row, "vocal_score").expect("a voiced segment is judged");
    assert!((0.0..=1.0).contains(&vocal));
    assert_eq!(f(&row, "vocal_start_s"), Some(0.0));
    let end = f(&row, "vocal_end_s").unwrap();
    assert!(
        (end - SECONDS as f64).abs() < 0.05,
        "the judged span ends with the file: {end}"
    );
    assert!(f(&row, "vocal_threshold").is_some());

    let (row, out) = screen(&backing, &[]);
    assert!(out.status.success());
    let share = f(&row, "vocal_share").unwrap();
    assert!(share < GATE_SHARE as f64, "no voice in the backing: {row}");
    assert!(row["vocal_score"].is_null() && row["vocal_start_s"].is_null());
}

#[test]
fn the_vocal_threshold_decides_the_vocal_verdict_and_lifts_the_file_score() {
    let tmp = tempfile::tempdir().unwrap();
    let song = write_song(tmp.path(), "song.wav", Some(0.0));
    let (off, out) = screen(&song, &["--vocals", "off"]);
    assert!(out.status.success());
    for key in ["vocal_share", "vocal_score", "vocal_threshold"] {
        assert!(off[key].is_null(), "{key} with the stage off: {off}");
    }
    let music = f(&off, "score").unwrap() as f32;
    let threshold = f(&off, "threshold").unwrap() as f32;

    // Threshold 0: any judged voice flags the file, and the file score reaches the threshold.
    let (row, _) = screen(&song, &["--vocal-threshold", "0"]);
    let vocal = f(&row, "vocal_score").unwrap() as f32;
    assert_eq!(row["verdict"], "synthetic", "{row}");
    let score = f(&row, "score").unwrap() as f32;
    assert!(score >= threshold);
    assert!((score - music.max(vocal_on_file_scale(vocal, 0.0, threshold))).abs() < 1e-6);

    // Threshold 1: the voice cannot flag it; the file score is the larger of the two.
    let (row, _) = screen(&song, &["--vocal-threshold", "1"]);
    let expected = music.max(vocal_on_file_scale(vocal, 1.0, threshold));
    assert!(
        (f(&row, "score").unwrap() as f32 - expected).abs() < 1e-6,
        "{row}"
    );
    assert_eq!(
        row["verdict"],
        if expected >= threshold {
            "synthetic"
        } else {
            "bona-fide"
        }
    );
    // The music windows' own scores are untouched by the stage.
    assert_eq!(row["mean_window_score"], off["mean_window_score"]);

    // A report decided at one vocal threshold is not continued at another.
    let report = tmp.path().join("report.jsonl");
    let run = |extra: &[&str]| {
        bin()
            .args([
                "screen",
                "--model",
                "music",
                "-b",
                "cpu",
                "--no-progress",
                "-o",
            ])
            .arg(&report)
            .args(extra)
            .arg(&song)
            .output()
            .unwrap()
    };
    assert!(run(&["--vocal-threshold", "0.5"]).status.success());
    let out = run(&["--resume", "--vocal-threshold", "0.25"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vocal stage's threshold 0.5"), "{err}");
    let out = run(&["--resume", "--vocals", "off"]);
    assert_eq!(out.status.code(), Some(2));

    // Its knobs without the stage are refused, not ignored.
    let (_, out) = screen(&song, &["--vocals", "off", "--vocal-threshold", "0.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("need the vocal stage"));
}

#[test]
fn the_gate_share_decides_what_is_separated() {
    let tmp = tempfile::tempdir().unwrap();
    // A voice 20 dB under the backing: below the default gate, judged with the gate at 0
    // (every tested segment separated).
    let quiet = write_song(tmp.path(), "quiet.wav", Some(-20.0));
    let (row, out) = screen(&quiet, &[]);
    assert!(out.status.success());
    assert!(f(&row, "vocal_share").unwrap() < GATE_SHARE as f64, "{row}");
    assert!(row["vocal_score"].is_null());
    let (row, _) = screen(&quiet, &["--vocal-gate", "0"]);
    assert!(f(&row, "vocal_score").is_some(), "{row}");
}

#[test]
fn the_review_page_plays_the_separated_voice_of_a_file_the_voice_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let song = write_song(tmp.path(), "song.wav", Some(0.0));
    let report = tmp.path().join("report.jsonl");
    let out = bin()
        .args(["screen", "--model", "music", "-b", "cpu", "--no-progress"])
        .args(["--vocal-threshold", "0", "-o"])
        .arg(&report)
        .arg(&song)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = tmp.path().join("review.html");
    let out = bin()
        .args(["review", "-b", "cpu"])
        .arg(&report)
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let at = html.find("The separated voice").expect("a voice panel");
    let panel = &html[at..];
    assert!(
        panel.contains("the voice alone flags the file"),
        "{panel:.600}"
    );
    assert!(panel.contains("<audio controls") && panel.contains("data:audio/wav;base64,"));
    assert!(panel.contains("data:image/png;base64,"));
}
