//! `deepscreen` as a user runs it: a mixed catalog (all six containers plus every kind of bad
//! input) gives exactly one row per input, errors where due, and the documented exit codes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::common::bin;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A small random-weight model: 16 kHz, 1 s windows with 0.5 s hop.
fn write_model(dir: &Path) -> PathBuf {
    let layers = json!([
        {"type": "conv2d", "name": "c1", "out_channels": 8, "kernel": [3, 3], "padding": [1, 1], "batchnorm": true},
        {"type": "mfm"},
        {"type": "max_pool2d", "kernel": [2, 2]},
        {"type": "global_avg_pool"},
        {"type": "linear", "name": "fc", "out_features": 1}
    ]);
    crate::common::write_small_model(dir, "cli-test", Some(0.1), layers, 3)
}

use crate::common::write_wav;

fn tone(i: usize, rate: u32, freq: f32) -> f32 {
    0.3 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()
}

fn rows_by_name(stdout: &[u8]) -> HashMap<String, Value> {
    let mut rows = HashMap::new();
    for line in String::from_utf8_lossy(stdout).lines() {
        let row: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        let name = Path::new(row["path"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            rows.insert(name.clone(), row).is_none(),
            "two rows for {name}"
        );
    }
    rows
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// Builds the mixed catalog; returns the names expected to score and to fail.
fn mixed_catalog(dir: &Path) -> (Vec<&'static str>, Vec<&'static str>) {
    for name in [
        "tone.wav",
        "tone.flac",
        "tone.mp3",
        "tone.ogg",
        "tone_aac.m4a",
        "tone_alac.m4a",
        "tone.opus",
        "tone_opus.opus",
        "tone_opus.webm",
        "tone_ac3.mka",
    ] {
        std::fs::copy(fixture(name), dir.join(name)).unwrap();
    }
    // Damage mid-file: 64 bytes inverted lose one FLAC frame (a warning); 4 KB lose over 10 %
    // of the 1.5 s (an error row).
    for (name, len) in [("damaged_light.flac", 64), ("damaged_heavy.flac", 4096)] {
        let mut bytes = std::fs::read(fixture("tone.flac")).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid..mid + len].iter_mut().for_each(|b| *b ^= 0xff);
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let mp3 = std::fs::read(fixture("tone.mp3")).unwrap();
    std::fs::write(dir.join("truncated.mp3"), &mp3[..mp3.len() / 3]).unwrap();
    let flac = std::fs::read(fixture("tone.flac")).unwrap();
    std::fs::write(dir.join("truncated.flac"), &flac[..flac.len() / 2]).unwrap();
    std::fs::write(dir.join("empty.wav"), b"").unwrap();
    std::fs::write(
        dir.join("random.mp3"),
        (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(dir.join("text.flac"), "just some notes\nnot audio\n").unwrap();
    write_wav(&dir.join("zero_length.wav"), 16000, 1, 0, false, |_, _| 0.0);
    write_wav(&dir.join("one_sample.wav"), 16000, 1, 1, false, |_, _| 0.5);
    write_wav(
        &dir.join("eight_channels.wav"),
        48000,
        8,
        48000,
        false,
        |i, c| tone(i, 48000, 200.0 * (c + 1) as f32),
    );
    write_wav(
        &dir.join("hires_192k.wav"),
        192000,
        2,
        192000,
        true,
        |i, _| tone(i, 192000, 1000.0),
    );
    write_wav(
        &dir.join("nan_samples.wav"),
        16000,
        1,
        24000,
        true,
        |i, _| match i % 1000 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            _ => tone(i, 16000, 440.0),
        },
    );
    // Finite float samples near f32's limit once made the resampler's FFT overflow and panic
    // (found by fuzzing): they are clipped, counted and named in a warning.
    write_wav(
        &dir.join("huge_samples.wav"),
        22050,
        1,
        33075,
        true,
        |i, _| match i % 500 {
            0 => 3e38,
            1 => -3e38,
            _ => tone(i, 22050, 440.0),
        },
    );
    write_wav(&dir.join("silence.wav"), 16000, 1, 20000, false, |_, _| 0.0);
    write_wav(&dir.join("rate_1hz.wav"), 1, 1, 100, false, |_, _| 0.1);
    std::fs::write(dir.join("readme.txt"), "ignored: not an audio extension").unwrap();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::os::unix::fs::symlink(dir, sub.join("loop")).unwrap(); // a loop back to the root
    std::os::unix::fs::symlink(
        "/nonexistent/deepscreen/target.wav",
        dir.join("dangling.wav"),
    )
    .unwrap();
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9_latin1.wav");
        std::fs::copy(fixture("tone.wav"), dir.join(name)).unwrap();
    }
    let ok = vec![
        "tone.wav",
        "tone.flac",
        "tone.mp3",
        "tone.ogg",
        "tone_aac.m4a",
        "tone_alac.m4a",
        "tone.opus",
        "tone_opus.opus",
        "tone_opus.webm",
        "damaged_light.flac",
        "truncated.mp3",
        "eight_channels.wav",
        "hires_192k.wav",
        "nan_samples.wav",
        "huge_samples.wav",
        "caf\u{FFFD}_latin1.wav",
    ];
    let failed = vec![
        "empty.wav",
        "random.mp3",
        "text.flac",
        "zero_length.wav",
        "one_sample.wav",
        "rate_1hz.wav",
        "loop",
        "dangling.wav",
        "tone_ac3.mka",
        "damaged_heavy.flac",
    ];
    (ok, failed)
}

#[test]
fn mixed_catalog_gives_one_row_per_input() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let catalog = tmp.path().join("catalog");
    std::fs::create_dir(&catalog).unwrap();
    let (ok, failed) = mixed_catalog(&catalog);

    let out = run(bin()
        .args(["screen", "--model"])
        .arg(&model)
        .arg(&catalog)
        // The CPU backend named: auto would pick CUDA on a GPU machine (other tests compare them).
        .args(["--segments", "--batch", "3", "--backend", "cpu"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some inputs failed, so exit 1; stderr: {stderr}"
    );
    let rows = rows_by_name(&out.stdout);
    // truncated.flac may decode partially or fail; either way it gets exactly one row;
    // silence.wav is read fine but holds no signal: verdict no-signal, no score, no error.
    let silence = &rows["silence.wav"];
    assert_eq!(silence["verdict"], "no-signal", "{silence}");
    assert!(
        silence["score"].is_null() && silence["error"].is_null(),
        "{silence}"
    );
    assert_eq!(
        rows.len(),
        ok.len() + failed.len() + 2,
        "rows: {:?}",
        rows.keys().collect::<Vec<_>>()
    );
    for name in &ok {
        let row = rows
            .get(*name)
            .unwrap_or_else(|| panic!("no row for {name}"));
        assert!(row["error"].is_null(), "{name}: {}", row["error"]);
        let score = row["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{name}: score {score}");
        assert_eq!(
            row["verdict"],
            if score >= 0.5 {
                "synthetic"
            } else {
                "bona-fide"
            }
        );
        assert_eq!(row["model"], "cli-test");
        if name.starts_with("tone") {
            assert_eq!(
                row["warnings"],
                json!([]),
                "{name}: an intact file has no warnings"
            );
        }
        assert_eq!(row["backend"], "cpu");
        let segments = row["segments"].as_array().unwrap();
        assert_eq!(segments.len() as u64, row["windows"].as_u64().unwrap());
        let max = segments
            .iter()
            .map(|s| s["score"].as_f64().unwrap())
            .fold(0.0, f64::max);
        assert!((max - row["max_window_score"].as_f64().unwrap()).abs() < 1e-6);
    }
    for name in &failed {
        let row = rows
            .get(*name)
            .unwrap_or_else(|| panic!("no row for {name}"));
        assert!(
            row["score"].is_null() && row["verdict"].is_null(),
            "{name} must not be scored"
        );
        assert!(
            !row["error"].as_str().unwrap_or("").is_empty(),
            "{name} needs an error"
        );
    }
    let err = |name: &str| rows[name]["error"].as_str().unwrap().to_string();
    assert!(
        err("empty.wav").contains("empty file"),
        "{}",
        err("empty.wav")
    );
    assert!(
        err("tone_ac3.mka").contains("unsupported codec: AC-3"),
        "{}",
        err("tone_ac3.mka")
    );
    assert!(
        err("damaged_heavy.flac").contains("damaged: 0.3 s of 1.5 s could not be decoded (21 %"),
        "{}",
        err("damaged_heavy.flac")
    );
    let light = rows["damaged_light.flac"]["warnings"].to_string();
    assert!(
        light.contains("damaged data was skipped: 0.10 s of audio lost mid-file")
            && !light.contains("truncated"),
        "{light}"
    );
    assert!(
        err("text.flac").contains("not a recognised audio file"),
        "{}",
        err("text.flac")
    );
    assert!(
        err("one_sample.wav").contains("too short"),
        "{}",
        err("one_sample.wav")
    );
    assert!(err("loop").contains("loop"), "{}", err("loop"));
    assert!(
        err("dangling.wav").contains("No such file"),
        "{}",
        err("dangling.wav")
    );

    let eight = &rows["eight_channels.wav"];
    assert_eq!(
        (eight["channels"].as_u64(), eight["sample_rate"].as_u64()),
        (Some(8), Some(48000))
    );
    assert!((eight["duration_s"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    let hires = &rows["hires_192k.wav"];
    assert_eq!(hires["sample_rate"].as_u64(), Some(192000));
    let nan = &rows["nan_samples.wav"];
    let warnings = nan["warnings"].to_string();
    assert!(warnings.contains("72 NaN/Inf samples"), "{warnings}");
    let huge = &rows["huge_samples.wav"];
    let warnings = huge["warnings"].to_string();
    assert!(warnings.contains("134 samples beyond ±64"), "{warnings}");
    assert!(huge["score"].as_f64().is_some_and(f64::is_finite), "{huge}");
    // 1.5 s at 1 s windows with 0.5 s hop: [0,1], [0.5,1.5]
    let spans: Vec<(f64, f64)> = nan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start_s"].as_f64().unwrap(), s["end_s"].as_f64().unwrap()))
        .collect();
    assert_eq!(spans, vec![(0.0, 1.0), (0.5, 1.5)]);
    let truncated = &rows["truncated.flac"];
    assert!(
        truncated["error"].is_string() || truncated["warnings"].to_string().contains("truncated"),
        "a cut FLAC must be reported: {truncated}"
    );

    assert!(
        stderr.contains(&format!(
            "{} files screened ({} failed",
            rows.len(),
            rows.values().filter(|r| r["error"].is_string()).count()
        )),
        "{stderr}"
    );
}

#[test]
fn all_good_inputs_exit_zero_and_csv_has_one_record_per_file() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let out_path = tmp.path().join("out.csv");
    let out = run(bin()
        .args(["screen", "--format", "csv", "--threads", "1", "-o"])
        .arg(&out_path)
        .arg("--model")
        .arg(&model)
        .arg(fixture("tone.ogg"))
        .arg(fixture("tone_alac.m4a")));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "rows go to the -o file only");
    let mut reader = csv::Reader::from_path(&out_path).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().take(3).collect::<Vec<_>>(),
        ["path", "score", "verdict"]
    );
    let error = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "error")
        .unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 2);
    for r in &records {
        let score: f64 = r[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&score));
        assert_eq!(&r[error], "", "no error");
    }
}

#[test]
fn files_from_stdin_and_missing_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let mut child = bin()
        .args(["screen", "--files-from", "-", "--model"])
        .arg(&model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let list = format!(
        "{}\n\n{}\n",
        fixture("tone.wav").display(),
        tmp.path().join("missing.mp3").display()
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let rows = rows_by_name(&out.stdout);
    assert_eq!(rows.len(), 2);
    assert!(rows["tone.wav"]["score"].is_number());
    assert!(
        rows["missing.mp3"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot open")
    );
}

#[test]
fn same_scores_whatever_the_batch_and_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let scores = |extra: &[&str]| {
        let out = run(bin()
            .args(["screen", "--model"])
            .arg(&model)
            .arg(fixture("tone.flac"))
            .arg(fixture("tone.mp3"))
            .args(extra));
        assert_eq!(out.status.code(), Some(0));
        let rows = rows_by_name(&out.stdout);
        let mut v: Vec<(String, f64)> = rows
            .iter()
            .map(|(k, r)| (k.clone(), r["score"].as_f64().unwrap()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let a = scores(&["--batch", "1", "--threads", "1"]);
    let b = scores(&["--batch", "64", "--threads", "2"]);
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6, "{n}: {x} vs {y}");
    }
}

#[test]
fn screen_without_model_uses_the_embedded_music_model() {
    for (args, id, rate) in [
        (vec![], "music", 44100),
        (vec!["--model", "speech"], "speech", 16000),
    ] {
        let out = run(bin()
            .arg("screen")
            .args(&args)
            .arg(fixture("tone.flac"))
            .arg("--no-progress"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = rows_by_name(&out.stdout);
        let row = &rows["tone.flac"];
        let info = deepscreen::model::load(id).unwrap().info();
        assert_eq!(row["model"].as_str(), Some(info.id.as_str()));
        let score = row["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{id}: score {score}");
        assert_eq!(info.sample_rate, rate);
    }
}

#[test]
fn fatal_errors_exit_two_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    std::fs::create_dir(tmp.path().join("empty_dir")).unwrap();
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "screen".into(),
                "--model".into(),
                "nope".into(),
                fixture("tone.wav").display().to_string(),
            ],
            "neither an embedded model",
        ),
        (
            vec![
                "screen".into(),
                "--model".into(),
                model.display().to_string(),
            ],
            "nothing to screen",
        ),
        (
            vec![
                "screen".into(),
                "--model".into(),
                model.display().to_string(),
                "-o".into(),
                "/nonexistent/dir/out.jsonl".into(),
                fixture("tone.wav").display().to_string(),
            ],
            "cannot create output file",
        ),
        (
            vec!["screen".into(), "--threshold".into(), "1.5".into()],
            "outside [0, 1]",
        ),
        (
            vec![
                "screen".into(),
                "--model".into(),
                fixture("tone.wav").display().to_string(),
                fixture("tone.wav").display().to_string(),
            ],
            "not a valid safetensors file",
        ),
    ];
    if !deepscreen::backend::cuda::status().0 {
        // without a GPU, asking for CUDA is fatal and says why
        let args = ["screen", "--backend", "cuda", "--model"]
            .map(String::from)
            .to_vec();
        let mut args = args;
        args.push(model.display().to_string());
        args.push(fixture("tone.wav").display().to_string());
        cases.push((args, "cuda"));
    }
    for (args, needle) in cases {
        let out = run(bin().args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
    }
}

#[test]
fn devices_lists_every_backend_with_a_reason() {
    let out = run(bin().args(["devices", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_name: HashMap<&str, &Value> = list
        .iter()
        .map(|v| (v["backend"].as_str().unwrap(), v))
        .collect();
    assert_eq!(by_name["cpu"]["available"], true);
    // cuda: a device description, or the reason there is none
    let cuda = by_name["cuda"]["detail"].as_str().unwrap();
    if by_name["cuda"]["available"] == true {
        assert!(cuda.contains("compute capability"), "{cuda}");
    } else {
        assert!(
            cuda.contains("not found") || cuda.contains("CUDA"),
            "{cuda}"
        );
    }
    // wgpu: an adapter description, or the reason there is none (and a hint to fix it)
    let wgpu = by_name["wgpu"]["detail"].as_str().unwrap();
    if by_name["wgpu"]["available"] == true {
        assert!(wgpu.contains("max storage binding"), "{wgpu}");
    } else {
        assert!(wgpu.contains("no ") && wgpu.contains("adapter"), "{wgpu}");
    }
    let text = run(bin().arg("devices"));
    assert!(String::from_utf8_lossy(&text.stdout).contains("cpu   available"));
}

/// `DEEPSCREEN_CPU_MATH`: a value it does not know makes the CPU backend unavailable with the
/// reason (in `devices`, and as a fatal error for `screen`), never a silent f32 run; `bf16`
/// runs where the CPU has AVX512-BF16 and otherwise says so.
#[test]
fn cpu_math_is_checked_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let devices = run(bin()
        .args(["devices", "--json"])
        .env("DEEPSCREEN_CPU_MATH", "int4"));
    let list: Vec<Value> = serde_json::from_slice(&devices.stdout).unwrap();
    let cpu = list.iter().find(|v| v["backend"] == "cpu").unwrap();
    assert_eq!(cpu["available"], false, "{cpu}");
    assert!(
        cpu["detail"]
            .as_str()
            .unwrap()
            .contains("DEEPSCREEN_CPU_MATH=int4")
    );
    let out = run(bin()
        .env("DEEPSCREEN_CPU_MATH", "int4")
        .args(["screen", "-b", "cpu", "--model"])
        .arg(&model)
        .arg(fixture("tone.wav")));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected f32 (the default) or bf16"), "{err}");

    let bf16 = run(bin()
        .env("DEEPSCREEN_CPU_MATH", "bf16")
        .args(["screen", "-b", "cpu", "--model"])
        .arg(&model)
        .arg(fixture("tone.wav")));
    let f32 = run(bin()
        .args(["screen", "-b", "cpu", "--model"])
        .arg(&model)
        .arg(fixture("tone.wav")));
    assert_eq!(f32.status.code(), Some(0));
    if !cpu_has_avx512_bf16() {
        assert_eq!(bf16.status.code(), Some(2));
        let err = String::from_utf8_lossy(&bf16.stderr);
        assert!(err.contains("need AVX512-BF16"), "{err}");
        return;
    }
    assert_eq!(bf16.status.code(), Some(0));
    let score = |out: &Output| -> f64 {
        let row: Value =
            serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
        row["score"].as_f64().unwrap()
    };
    // The bound of golden::BF16_BOUNDS on scores.
    let (a, b) = (score(&f32), score(&bf16));
    assert!((a - b).abs() <= 1e-2, "f32 {a} vs bf16 {b}");
}

fn cpu_has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[test]
fn help_teaches_exit_codes_and_row_fields() {
    let out = run(bin().args(["screen", "--help"]));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Exit codes:",
        "--files-from",
        "--segments",
        "max_window_score",
        "symbolic links",
    ] {
        assert!(help.contains(needle), "screen --help lacks {needle:?}");
    }
}

#[test]
fn unreadable_file_gets_an_error_row() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let locked = tmp.path().join("locked.wav");
    std::fs::copy(fixture("tone.wav"), &locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root (as in CI containers) reads through permissions; then the file must simply be scored
    let privileged = std::fs::File::open(&locked).is_ok();
    let out = run(bin().args(["screen", "--model"]).arg(&model).arg(&locked));
    let rows = rows_by_name(&out.stdout);
    let row = &rows["locked.wav"];
    if privileged {
        assert_eq!(out.status.code(), Some(0));
        assert!(row["score"].is_number(), "{row}");
    } else {
        assert_eq!(out.status.code(), Some(1));
        let e = row["error"].as_str().unwrap();
        assert!(
            e.contains("cannot open") && e.contains("ermission denied"),
            "{e}"
        );
    }
}

/// A model whose arithmetic overflows gives NaN scores; NaN >= threshold is false, so without
/// a check the file would be reported "bona fide". It must be an error row instead.
#[test]
fn a_nan_score_is_an_error_row_not_a_verdict() {
    use deepscreen::model::HostTensor;
    let tmp = tempfile::tempdir().unwrap();
    let config: deepscreen::model::ModelConfig = serde_json::from_value(json!({
        "format": "deepscreen-model", "version": 1, "id": "overflows", "sample_rate": 16000,
        "window": {"seconds": 1.0, "hop_seconds": 1.0},
        "frontend": {"n_fft": 256, "hop_length": 128,
                     "filterbank": {"kind": "mel", "n_filters": 8}, "log": {"kind": "ln"}},
        "layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 1, "kernel": [1, 1], "activation": "relu"},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "fc1", "out_features": 2},
            {"type": "linear", "name": "fc2", "out_features": 1}
        ],
        "output": {"kind": "logit"}
    }))
    .unwrap();
    // The channel is 10 + 1e-3 * feature, about 10; fc1 scales it by 3e38 twice (+inf, +inf)
    // and fc2 takes their difference: inf - inf = NaN.
    let tensor = |shape: Vec<usize>, data: Vec<f32>| HostTensor { shape, data };
    let tensors = [
        ("c1.weight", tensor(vec![1, 1, 1, 1], vec![1e-3])),
        ("c1.bias", tensor(vec![1], vec![10.0])),
        ("fc1.weight", tensor(vec![2, 1], vec![3e38, 3e38])),
        ("fc1.bias", tensor(vec![2], vec![0.0, 0.0])),
        ("fc2.weight", tensor(vec![1, 2], vec![1.0, -1.0])),
        ("fc2.bias", tensor(vec![1], vec![0.0])),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    let model = tmp.path().join("overflows.safetensors");
    std::fs::write(
        &model,
        deepscreen::model::file::to_bytes(&config, &tensors).unwrap(),
    )
    .unwrap();
    let wav = tmp.path().join("tone.wav");
    crate::common::write_wav_16k(&wav, 2.0, |t| {
        0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
    });
    let out = run(bin()
        .args(["screen", "--backend", "cpu", "--model"])
        .arg(&model)
        .arg(&wav));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = &rows_by_name(&out.stdout)["tone.wav"];
    assert!(row["verdict"].is_null() && row["score"].is_null(), "{row}");
    let e = row["error"].as_str().unwrap();
    assert!(
        e.contains("non-finite score") && e.contains("0.00 s"),
        "{e}"
    );
}

#[test]
fn wgpu_backend_gives_the_cpu_rows() {
    gpu_backend_gives_the_cpu_rows("wgpu", None, 1e-4);
}

/// CUDA in f32 to the f32 bound; on its TF32 tensor cores (the default from compute
/// capability 8.0) to the TF32 bound on scores of golden.rs (an H200 measured 1.0e-4 here).
#[test]
fn cuda_backend_gives_the_cpu_rows() {
    gpu_backend_gives_the_cpu_rows("cuda", Some("f32"), 1e-4);
    gpu_backend_gives_the_cpu_rows("cuda", None, 1e-3);
}

/// `screen --backend gpu` (with `DEEPSCREEN_CUDA_MATH=math` if given) against the CPU
/// backend's rows: every score within `tol`.
fn gpu_backend_gives_the_cpu_rows(gpu: &str, math: Option<&str>, tol: f64) {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let screen = |backend: &str| {
        let mut cmd = bin();
        if let Some(math) = math {
            cmd.env("DEEPSCREEN_CUDA_MATH", math);
        }
        let out = run(cmd
            .args(["screen", "--segments", "--backend", backend, "--model"])
            .arg(&model)
            .arg(fixture("tone.flac"))
            .arg(fixture("tone.ogg"))
            .arg(fixture("tone_aac.m4a")));
        (
            out.status.code(),
            rows_by_name(&out.stdout),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, gpu_rows, stderr) = screen(gpu);
    if code == Some(2) {
        assert!(
            !crate::common::required(gpu),
            "{gpu} is required but --backend {gpu} failed: {stderr}"
        );
        assert!(
            stderr.contains(gpu),
            "the refusal must name the backend: {stderr}"
        );
        eprintln!("skipping: {stderr}");
        return;
    }
    let (_, cpu_rows, _) = screen("cpu");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(gpu_rows.len(), 3);
    for (name, cpu) in &cpu_rows {
        let row = &gpu_rows[name];
        assert_eq!(row["backend"], gpu);
        for field in ["score", "max_window_score", "mean_window_score"] {
            let (a, b) = (cpu[field].as_f64().unwrap(), row[field].as_f64().unwrap());
            assert!(
                (a - b).abs() <= tol,
                "{name} {field}: cpu {a} vs {gpu} {b} ({math:?})"
            );
        }
        let segments = |r: &Value| r["segments"].as_array().unwrap().clone();
        for (s, t) in segments(cpu).iter().zip(&segments(row)) {
            assert!((s["score"].as_f64().unwrap() - t["score"].as_f64().unwrap()).abs() <= tol);
        }
    }
}

#[test]
fn silent_files_get_no_signal_and_silent_windows_are_not_scored() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let rate = 16000;
    write_wav(
        &dir.path().join("silent.wav"),
        rate,
        1,
        3 * 16000,
        false,
        |_, _| 0.0,
    );
    // -70 dBFS RMS: below the -60 dBFS activity level.
    write_wav(
        &dir.path().join("quiet.wav"),
        rate,
        1,
        3 * 16000,
        true,
        |i, _| tone(i, rate, 440.0) / 0.3 * 10f32.powf(-70.0 / 20.0) * 2f32.sqrt(),
    );
    // 2 s of tone, then 4 s of digital silence: the silence is cut to a 0.25 s pause before
    // windowing, so 2.25 s remain: windows at 0, 0.5 and 1 s and one aligned to the end.
    write_wav(
        &dir.path().join("half.wav"),
        rate,
        1,
        6 * 16000,
        false,
        |i, _| {
            if i < 2 * 16000 {
                tone(i, rate, 440.0)
            } else {
                0.0
            }
        },
    );
    let out = run(bin()
        .arg("screen")
        .arg("--model")
        .arg(&model)
        .arg(dir.path())
        .args(["--no-progress", "--segments"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no-signal is not a failure: {stderr}"
    );
    assert!(
        stderr.contains("2 with no active signal"),
        "the summary counts them: {stderr}"
    );
    let rows = rows_by_name(&out.stdout);
    for name in ["silent.wav", "quiet.wav"] {
        let row = &rows[name];
        assert_eq!(row["verdict"], "no-signal", "{name}: {row}");
        assert!(
            row["score"].is_null() && row["error"].is_null(),
            "{name}: {row}"
        );
        assert_eq!(row["windows"], 0);
        let warnings = row["warnings"].to_string();
        assert!(warnings.contains("no active signal"), "{name}: {warnings}");
    }
    let half = &rows["half.wav"];
    // 2 s of tone, then silence cut out: windows at 0, 0.5 and 1 s (1 s long).
    assert_eq!(half["windows"], 3, "{half}");
    assert!(half["score"].is_f64());
    // Segment times are the file's own: the last window ends where the tone ends.
    let segments = half["segments"].as_array().unwrap();
    let last_end = segments.last().unwrap()["end_s"].as_f64().unwrap();
    assert!((last_end - 2.0).abs() < 0.03, "{half}");
}

#[test]
fn a_directory_as_files_from_is_fatal_not_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bin()
        .arg("screen")
        .arg("--files-from")
        .arg(dir.path())
        .arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is a directory") || stderr.contains("this is a directory"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no rows: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A long pause of digital silence inside audio must not move its score: silence is cut to a
/// short pause before windowing, so the model sees the same audio as without the gap. (Before,
/// an 8 s gap took a tone from 0.005 to 0.54 with the speech model.)
#[test]
fn digital_silence_gaps_do_not_raise_the_speech_score() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 16000u32;
    let n = 6 * rate as usize;
    // Brown noise (leaky-integrated white noise, deterministic): a broadband signal the speech
    // model calls bona fide. (A harmonic "voice" buzz was used before; the model trained on
    // neural-vocoder resyntheses now rightly calls that synthetic buzz synthetic.)
    let brown: Vec<f32> = {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut level = 0.0f32;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let white = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                level = 0.998 * level + 0.05 * white;
                level
            })
            .collect()
    };
    let brown_noise = |i: usize| brown[i];
    type Signal<'a> = Box<dyn Fn(usize) -> f32 + 'a>;
    let signals: [(&str, Signal<'_>); 2] = [
        ("tone", Box::new(|i| tone(i, rate, 440.0))),
        ("brown", Box::new(brown_noise)),
    ];
    for (name, signal) in &signals {
        write_wav(
            &dir.path().join(format!("{name}.wav")),
            rate,
            1,
            n,
            false,
            |i, _| signal(i),
        );
        // The same audio with 8 s of digital silence in the middle.
        let gap = 8 * rate as usize;
        write_wav(
            &dir.path().join(format!("{name}_gap.wav")),
            rate,
            1,
            n + gap,
            false,
            |i, _| match i {
                i if i < n / 2 => signal(i),
                i if i < n / 2 + gap => 0.0,
                i => signal(i - gap),
            },
        );
    }
    let out = run(bin()
        .args(["screen", "--model", "speech", "--no-progress"])
        .arg(dir.path()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rows_by_name(&out.stdout);
    let threshold = deepscreen::model::load("speech").unwrap().info().threshold as f64;
    for (name, _) in &signals {
        let plain = rows[&format!("{name}.wav")]["score"].as_f64().unwrap();
        let gapped = rows[&format!("{name}_gap.wav")]["score"].as_f64().unwrap();
        assert!(
            plain < threshold,
            "{name}: the check needs a signal called bona fide ({plain})"
        );
        assert!(
            gapped <= plain + 0.05 && gapped < threshold,
            "{name}: score {plain} without the gap, {gapped} with it"
        );
    }
}

/// A file that stops decoding early is scored on what was read, and its row says where it
/// stopped and how much of the declared length that is.
#[test]
fn a_partly_decoded_file_says_where_it_stopped_and_how_much_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let path = dir.path().join("cut.wav");
    write_wav(&path, 16000, 1, 160000, false, |i, _| tone(i, 16000, 440.0));
    // Keep the header (which declares 10 s) and the first ~3 s of samples.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..44 + 2 * 48000 + 1]).unwrap();
    let out = run(bin()
        .args(["screen", "--no-progress", "--model"])
        .arg(&model)
        .arg(&path));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rows_by_name(&out.stdout);
    let row = &rows["cut.wav"];
    assert!(row["score"].is_f64(), "{row}");
    let decoded = row["duration_s"].as_f64().unwrap();
    assert!((decoded - 3.0).abs() < 0.05, "{row}");
    let warnings = row["warnings"].to_string();
    assert!(
        warnings.contains("only 3.0 s of the 10.0 s the header declares were decoded (30 %)"),
        "{warnings}"
    );
}

/// Probing wgpu on a headless machine made Mesa's libwayland print "error: XDG_RUNTIME_DIR is
/// invalid or not set" twice on every run; stderr is for deepscreen's own messages.
#[test]
fn headless_runs_print_no_wayland_noise() {
    let out = bin()
        .arg("devices")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    // wgpu was probed (and on this machine, with Mesa's lavapipe, found).
    assert!(String::from_utf8_lossy(&out.stdout).contains("wgpu"));
}

#[test]
fn zero_threads_is_refused_with_a_reason() {
    for args in [
        &["screen", "x.wav", "-j", "0"][..],
        &["bench", "-j", "1,0"][..],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("0 threads cannot do any work"), "{stderr}");
    }
}

/// A --batch whose buffers cannot fit is refused before anything is allocated (it used to abort
/// with "memory allocation of 3.8 GB failed" minutes into a run), naming a batch that fits.
#[cfg(target_os = "linux")]
#[test]
fn a_batch_too_large_for_memory_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("a.wav");
    write_wav(&wav, 16000, 1, 16000, false, |i, _| {
        (i as f32 * 0.05).sin() * 0.3
    });
    let out = bin()
        .args([
            "screen", "--model", "music", "-b", "cpu", "--batch", "65536",
        ])
        .arg(&wav)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fits: usize = stderr
        .split("use --batch ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no batch that fits in: {stderr}"));
    assert!((1..65536).contains(&fits), "{stderr}");
    assert!(stderr.contains("GiB"), "{stderr}");
    // The batch it names runs.
    let out = bin()
        .args([
            "screen",
            "--model",
            "music",
            "-b",
            "cpu",
            "--batch",
            &fits.min(64).to_string(),
        ])
        .arg(&wav)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A report is never lost: an existing one is refused without --force (and a fatal error
/// with --force or --resume leaves it as it was), -o never overwrites an input, and a
/// symbolic link to a file is not written through. `merge` refuses an -o among its inputs.
#[test]
fn an_existing_report_or_input_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let audio = dir.path().join("victim.wav");
    crate::common::write_wav_16k(&audio, 1.5, |t| {
        0.3 * (2.0 * 440.0 * std::f32::consts::PI * t).sin()
    });
    let report = dir.path().join("r.jsonl");
    let screen = |extra: &[&std::ffi::OsStr]| {
        run(bin()
            .arg("screen")
            .arg(&audio)
            .arg("--model")
            .arg(&model)
            .arg("--no-progress")
            .args(extra))
    };
    let o = std::ffi::OsStr::new("-o");
    let first = screen(&[o, report.as_os_str()]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let kept = std::fs::read(&report).unwrap();
    assert!(!kept.is_empty());
    let fails = |out: &Output, says: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    };

    // Rerun without --resume or --force: refused, the report untouched.
    fails(&screen(&[o, report.as_os_str()]), "--resume");
    assert_eq!(std::fs::read(&report).unwrap(), kept);
    // A fatal error (a directory as the list) with --force or --resume: the report untouched.
    let list = std::ffi::OsStr::new("--files-from");
    for mode in ["--force", "--resume"] {
        let mode = std::ffi::OsStr::new(mode);
        fails(
            &screen(&[o, report.as_os_str(), mode, list, dir.path().as_os_str()]),
            "directory",
        );
        assert_eq!(std::fs::read(&report).unwrap(), kept, "{mode:?}");
    }
    // --force replaces it.
    let replaced = screen(&[o, report.as_os_str(), std::ffi::OsStr::new("--force")]);
    assert_eq!(replaced.status.code(), Some(0), "{replaced:?}");
    assert_eq!(std::fs::read(&report).unwrap(), kept);

    // -o naming an input: refused even with --force, the audio untouched.
    let wav = std::fs::read(&audio).unwrap();
    let force = std::ffi::OsStr::new("--force");
    fails(&screen(&[o, audio.as_os_str(), force]), "also an input");
    assert_eq!(std::fs::read(&audio).unwrap(), wav);

    // A symbolic link to a file: refused, the file it names untouched.
    #[cfg(unix)]
    {
        let target = dir.path().join("precious.txt");
        std::fs::write(&target, "keep me\n").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        fails(&screen(&[o, link.as_os_str(), force]), "symbolic link");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    }

    // merge: -o among the reports is refused; a merge into a new file works.
    let merged = run(bin().arg("merge").arg(&report).arg("-o").arg(&report));
    fails(&merged, "also a report to merge");
    assert_eq!(std::fs::read(&report).unwrap(), kept);
    let out = dir.path().join("merged.jsonl");
    let merged = run(bin().arg("merge").arg(&report).arg("-o").arg(&out));
    assert_eq!(merged.status.code(), Some(0), "{merged:?}");
    assert_eq!(std::fs::read(&out).unwrap(), kept);
}

/// `deepscreen screen DIR | head -1`: the reader goes away and the run ends quietly (exit 0, no
/// "Broken pipe" error), with the report on stdout or named as `-o /dev/stdout`. 400 rows are
/// more than a pipe holds, so the writer does meet the closed pipe.
#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let catalog = tmp.path().join("catalog");
    std::fs::create_dir(&catalog).unwrap();
    for i in 0..400 {
        std::fs::copy(fixture("tone.wav"), catalog.join(format!("t{i:03}.wav"))).unwrap();
    }
    for report in [None, Some("/dev/stdout")] {
        let mut cmd = bin();
        cmd.args(["screen", "--model"])
            .arg(&model)
            .arg(&catalog)
            .args(["--backend", "cpu"]);
        if let Some(path) = report {
            cmd.args(["-o", path]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(first.contains("\"path\""), "{first}");
        assert_eq!(out.status.code(), Some(0), "{report:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{report:?}: {stderr}");
    }
}

/// A long file holding a 0.3 s blip in silence has too little signal for a model that needs
/// 1 s: verdict no-signal with a warning that says so (not an error, not "too short"); a file
/// that is itself 0.3 s long is too short, said in seconds; a model needing less scores both.
#[test]
fn a_blip_in_silence_is_no_signal_and_a_short_file_is_too_short() {
    let dir = tempfile::tempdir().unwrap();
    let layers = json!([
        {"type": "conv2d", "name": "c1", "out_channels": 4, "kernel": [3, 3], "padding": [1, 1]},
        {"type": "global_avg_pool"},
        {"type": "linear", "name": "fc", "out_features": 1}
    ]);
    let rate = 16000;
    let blip = |i: usize| {
        if (2 * rate..2 * rate + 4800).contains(&i) {
            tone(i, 16000, 440.0)
        } else {
            0.0
        }
    };
    write_wav(
        &dir.path().join("blip.wav"),
        16000,
        1,
        5 * rate,
        false,
        |i, _| blip(i),
    );
    write_wav(
        &dir.path().join("short.wav"),
        16000,
        1,
        4800,
        false,
        |i, _| tone(i, 16000, 440.0),
    );
    for (min_seconds, scored) in [(1.0, false), (0.25, true)] {
        let model_dir = dir.path().join(format!("model-{min_seconds}"));
        std::fs::create_dir(&model_dir).unwrap();
        let model = crate::common::write_small_model(
            &model_dir,
            "blip-test",
            Some(min_seconds),
            layers.clone(),
            5,
        );
        let out = run(bin()
            .args(["screen", "--no-progress", "--model"])
            .arg(&model)
            .arg(dir.path().join("blip.wav"))
            .arg(dir.path().join("short.wav")));
        let rows = rows_by_name(&out.stdout);
        let (blip, short) = (&rows["blip.wav"], &rows["short.wav"]);
        if scored {
            assert!(
                blip["score"].is_f64() && short["score"].is_f64(),
                "{blip} {short}"
            );
            continue;
        }
        assert_eq!(blip["verdict"], "no-signal", "{blip}");
        assert!(blip["error"].is_null(), "{blip}");
        let warnings = blip["warnings"].to_string();
        assert!(
            warnings.contains("only 0.30 s of active signal (4.70 s of silence skipped), less than the 1.00 s the model needs"),
            "{warnings}"
        );
        assert_eq!(
            short["error"], "audio too short: 0.30 s, the model needs at least 1.00 s",
            "{short}"
        );
    }
}

/// `-o -` is standard output, as in most tools (it once wrote a file named `-`): screen and merge
/// write their rows there and create no file; options that need a report file say so; outputs
/// that can only be files (review pages, eval's plots) refuse `-`.
#[test]
fn dash_output_is_standard_output_and_never_a_file_named_dash() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let audio = dir.path().join("a.wav");
    crate::common::write_wav_16k(&audio, 1.5, |t| {
        0.3 * (2.0 * 330.0 * std::f32::consts::PI * t).sin()
    });
    let in_dir = |cmd: &mut Command| run(cmd.current_dir(dir.path()));
    let screen = |extra: &[&str]| {
        in_dir(
            bin()
                .arg("screen")
                .arg(&audio)
                .arg("--model")
                .arg(&model)
                .arg("--no-progress")
                .args(extra),
        )
    };
    let dash = dir.path().join("-");

    let to_stdout = screen(&["-o", "-"]);
    assert_eq!(to_stdout.status.code(), Some(0), "{to_stdout:?}");
    let rows = rows_by_name(&to_stdout.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows.contains_key("a.wav"), "{rows:?}");
    assert!(!dash.exists(), "-o - created a file named -");
    // The same rows as with no -o at all.
    let plain = screen(&[]);
    assert_eq!(plain.stdout, to_stdout.stdout);
    // CSV by --format, as for standard output.
    let csv = screen(&["-o", "-", "--format", "csv"]);
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with("path,score,verdict"));

    for (extra, says) in [
        (&["--resume"][..], "--resume continues a report file"),
        (&["--force"][..], "--force replaces a report file"),
        (&["--html", "page.html"][..], "--html builds its page"),
    ] {
        let mut args = vec!["-o", "-"];
        args.extend_from_slice(extra);
        let out = screen(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{extra:?}: no rows before the refusal"
        );
    }

    // merge -o -: the merged report on standard output.
    let report = dir.path().join("r.jsonl");
    std::fs::write(&report, &to_stdout.stdout).unwrap();
    let merged = in_dir(bin().arg("merge").arg(&report).args(["-o", "-"]));
    assert_eq!(merged.status.code(), Some(0), "{merged:?}");
    assert_eq!(merged.stdout, to_stdout.stdout);

    // File-only outputs refuse -, before any work.
    let review = in_dir(bin().arg("review").arg(&report).args(["-o", "-"]));
    assert_eq!(review.status.code(), Some(2), "{review:?}");
    assert!(String::from_utf8_lossy(&review.stderr).contains("not standard output"));
    assert!(!dash.exists(), "a file named - was written");
}
