//! `deepscreen eval`: metrics against hand-computed cases, protocol readers, and the command
//! end to end (report, ASVspoof-style score file, ROC plot).

use std::path::Path;
use std::process::{Command, Stdio};

use deepscreen::eval::protocol::{ProtocolFormat, read};
use deepscreen::metrics::{detection_at_fa, eer, flagged_rate, min_dcf, roc_auc};
use deepscreen::model::{ModelConfig, file};
use serde_json::json;

const BONA: [f64; 4] = [0.1, 0.2, 0.3, 0.4];
const SPOOF: [f64; 4] = [0.35, 0.5, 0.6, 0.7];

#[test]
fn eer_by_hand() {
    // At threshold 0.4: one spoof (0.35) missed of 4, one bona fide (0.4) flagged of 4.
    assert_eq!(eer(&BONA, &SPOOF), (0.25, 0.4));
    assert_eq!(eer(&[0.0, 1.0], &[2.0, 3.0]).0, 0.0, "separable");
    assert_eq!(eer(&[0.5], &[0.5]).0, 0.5, "indistinguishable");
    assert_eq!(eer(&[2.0, 3.0], &[0.0, 1.0]).0, 1.0, "inverted");
}

#[test]
fn min_dcf_by_hand() {
    // Costs Cmiss 1, Cfa 10, P(spoof) 0.05, normalised by min(0.95, 0.5) = 0.5. Best threshold
    // 0.35: no spoof missed, 1/4 bona fide flagged: (0.5 · 0.25) / 0.5 = 0.25.
    assert!((min_dcf(&BONA, &SPOOF) - 0.25).abs() < 1e-12);
    assert_eq!(min_dcf(&[0.0, 1.0], &[2.0, 3.0]), 0.0);
    // all accepted as bona fide: (0.95 · 1) / 0.5 = 1.9; all flagged: (0.5 · 1) / 0.5 = 1
    assert!((min_dcf(&[0.5], &[0.5]) - 1.0).abs() < 1e-12);
}

#[test]
fn auc_by_hand() {
    // spoof 2 beats bona 1, ties 2, loses to 3 → 1.5; spoof 4 beats all → 3; 4.5 / 6
    assert!((roc_auc(&[1.0, 2.0, 3.0], &[2.0, 4.0]) - 0.75).abs() < 1e-12);
    assert_eq!(roc_auc(&BONA, &SPOOF), 15.0 / 16.0);
}

#[test]
fn detection_at_low_false_alarms_by_hand() {
    // 200 bona fide at 0.000, 0.005, …, 0.995; spoofs at 0.2, 0.9905, 0.9955, 0.999 and 1.0.
    let bona: Vec<f64> = (0..200).map(|i| i as f64 / 200.0).collect();
    let spoof = [0.2, 0.9905, 0.9955, 0.999, 1.0];
    // ≤ 1 % FA allows flagging at most 2 bona fide (0.99, 0.995): threshold 0.99 catches the
    // four spoofs above it. ≤ 0.1 % allows none: a threshold just above 0.995 still catches
    // 0.9955, 0.999 and 1.0.
    assert_eq!(detection_at_fa(&bona, &spoof, 0.01), 0.8);
    assert_eq!(detection_at_fa(&bona, &spoof, 0.001), 0.6);
    assert_eq!(flagged_rate(&bona, 0.99), 0.01);
    assert_eq!(flagged_rate(&spoof, 0.5), 0.8);
}

#[test]
fn protocol_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let itw = tmp.path().join("meta.csv");
    std::fs::write(
        &itw,
        "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n",
    )
    .unwrap();
    let t = read(&itw, ProtocolFormat::Auto, None).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].spoof, t[0].path.clone(), t[0].attack.as_str()),
        (true, tmp.path().join("0.wav"), "-")
    );
    assert!(!t[1].spoof);

    let la = tmp.path().join("ASVspoof2019.LA.cm.dev.trl.txt");
    std::fs::write(
        &la,
        "LA_0069 LA_D_1047731 - - bonafide\nLA_0069 LA_D_1105538 - A01 spoof\n",
    )
    .unwrap();
    let t = read(&la, ProtocolFormat::Auto, Some(Path::new("/data/flac"))).unwrap();
    assert_eq!(t[1].path, Path::new("/data/flac/LA_D_1105538.flac"));
    assert_eq!(
        (t[1].attack.as_str(), t[1].spoof, t[0].spoof),
        ("A01", true, false)
    );

    let csv = tmp.path().join("list.csv");
    std::fs::write(
        &csv,
        "path,label,attack\na.flac,real,\nb.flac,fake,griffin-lim\n",
    )
    .unwrap();
    let t = read(&csv, ProtocolFormat::Csv, None).unwrap();
    assert_eq!(
        (t[1].attack.as_str(), t[0].attack.as_str()),
        ("griffin-lim", "-")
    );

    std::fs::write(&csv, "path,label\na.flac,maybe\n").unwrap();
    let e = read(&csv, ProtocolFormat::Csv, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("list.csv:2") && e.contains("unknown label"),
        "{e}"
    );
}

#[test]
fn eval_command_reports_scores_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let config: ModelConfig = serde_json::from_value(json!({
        "format": "deepscreen-model", "version": 1, "id": "eval-test", "sample_rate": 16000,
        "window": {"seconds": 1.0, "hop_seconds": 0.5},
        "frontend": {"n_fft": 256, "hop_length": 128, "filterbank": {"kind": "mel", "n_filters": 32},
                     "log": {"kind": "ln"}, "normalize": "mean"},
        "layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 4, "kernel": [3, 3], "activation": "relu"},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "fc", "out_features": 1}
        ],
        "output": {"kind": "logit"}
    }))
    .unwrap();
    let model = tmp.path().join("m.safetensors");
    std::fs::write(&model, file::random_model_bytes(&config, 2).unwrap()).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let protocol = tmp.path().join("protocol.csv");
    std::fs::write(
        &protocol,
        "path,label,attack,source\ntone.wav,bona-fide,,studio-a\ntone.flac,bona-fide,,studio-b\n\
         tone.mp3,spoof,codec-a,x\ntone.ogg,spoof,codec-b,x\ntone_aac.m4a,spoof,codec-a,x\n",
    )
    .unwrap();
    let (scores, plot) = (tmp.path().join("scores.txt"), tmp.path().join("roc.svg"));
    let det = tmp.path().join("det.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_deepscreen"))
        .args(["eval", "--json", "--model"])
        .arg(&model)
        .arg("--audio-dir")
        .arg(&fixtures)
        .arg("--scores")
        .arg(&scores)
        .arg("--plot")
        .arg(&plot)
        .arg("--det")
        .arg(&det)
        .arg(&protocol)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            report["pooled"]["bona_fide"].as_u64(),
            report["pooled"]["spoof"].as_u64()
        ),
        (Some(2), Some(3))
    );
    let eer = report["pooled"]["eer"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&eer));
    assert_eq!(report["per_attack"]["codec-a"]["spoof"].as_u64(), Some(2));
    let lines: Vec<String> = std::fs::read_to_string(&scores)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(
        lines[2].starts_with("tone.mp3 codec-a spoof "),
        "{}",
        lines[2]
    );
    assert!(lines[0].starts_with("tone.wav - bonafide "), "{}", lines[0]);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("false alarm rate"));
    let svg = std::fs::read_to_string(&det).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("miss rate") && svg.contains("threshold"));
    // False alarms per bona fide source at the model's threshold (0.5 for this model).
    assert_eq!(report["threshold"].as_f64(), Some(0.5));
    let row_score = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .map(|llr| 1.0 / (1.0 + llr.parse::<f64>().unwrap().exp()))
            .unwrap()
    };
    for (source, file) in [("studio-a", "tone.wav"), ("studio-b", "tone.flac")] {
        let entry = &report["per_source"][source];
        assert_eq!(entry["bona_fide"].as_u64(), Some(1), "{report}");
        let flagged = u64::from(row_score(file) >= 0.5);
        assert_eq!(
            entry["flagged"].as_u64(),
            Some(flagged),
            "{source}: {report}"
        );
    }
    assert!(report["pooled"]["detection_at_1pct_fa"].is_f64());
    // The table marks detection rates the two bona fide trials cannot resolve (a rate at 1 %
    // false alarms needs 100 of them) and says what they are instead.
    let out = Command::new(env!("CARGO_BIN_EXE_deepscreen"))
        .args(["eval", "--model"])
        .arg(&model)
        .arg("--audio-dir")
        .arg(&fixtures)
        .arg(&protocol)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let pooled = table.lines().find(|l| l.starts_with("pooled")).unwrap();
    assert_eq!(pooled.matches("%*").count(), 2, "{table}");
    assert!(
        table.contains("the figure is detection with no false alarm among those 2 trials"),
        "{table}"
    );
}
