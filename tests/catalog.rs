//! Catalog-scale behaviour: resume after SIGKILL (torn line repaired, no duplicate, no lost
//! row), shard partition and merge, scheduler environment defaults, input order, and memory
//! that does not grow with file length.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deepscreen::model::{ModelConfig, file};
use deepscreen::screen::shard::Shard;
use serde_json::{Value, json};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deepscreen"));
    c.stdin(Stdio::null());
    c
}

fn write_model(dir: &Path) -> PathBuf {
    let config: ModelConfig = serde_json::from_value(json!({
        "format": "deepscreen-model", "version": 1, "id": "catalog-test",
        "sample_rate": 16000,
        "window": {"seconds": 1.0, "hop_seconds": 0.5},
        "frontend": {"n_fft": 256, "hop_length": 128, "filterbank": {"kind": "mel", "n_filters": 32},
                     "log": {"kind": "ln"}, "normalize": "mean"},
        "layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 8, "kernel": [3, 3], "padding": [1, 1], "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "fc", "out_features": 1}
        ],
        "output": {"kind": "logit"}
    }))
    .unwrap();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, file::random_model_bytes(&config, 5).unwrap()).unwrap();
    path
}

fn write_wav(path: &Path, seconds: f32, freq: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(seconds * 16000.0) as usize {
        let v = 0.3 * (2.0 * std::f32::consts::PI * freq * i as f32 / 16000.0).sin();
        w.write_sample((v * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// `n` WAV files of a few seconds each (different tones), plus one broken file.
fn catalog(dir: &Path, n: usize, seconds: f32) -> PathBuf {
    let cat = dir.join("catalog");
    std::fs::create_dir_all(&cat).unwrap();
    for i in 0..n {
        write_wav(
            &cat.join(format!("track{i:03}.wav")),
            seconds,
            200.0 + 37.0 * i as f32,
        );
    }
    std::fs::write(cat.join("broken.wav"), b"not audio").unwrap();
    cat
}

/// The catalog's files as a sorted path list in `dir/list.txt` (as `--files-from` reads it).
fn write_list(dir: &Path, catalog: &Path) -> (PathBuf, Vec<String>) {
    let list = dir.join("list.txt");
    let mut names: Vec<String> = std::fs::read_dir(catalog)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    names.sort();
    std::fs::write(&list, names.join("\n") + "\n").unwrap();
    (list, names)
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn by_path(rows: &[Value]) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for r in rows {
        let p = r["path"].as_str().unwrap().to_string();
        assert!(
            map.insert(p.clone(), r.clone()).is_none(),
            "duplicate row for {p}"
        );
    }
    map
}

/// Rows equal field by field (scores within 1e-6: batches differ between runs).
fn assert_same_rows(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, ra) in a {
        let rb = &b[path];
        for (k, va) in ra.as_object().unwrap() {
            let vb = &rb[k];
            match (va.as_f64(), vb.as_f64()) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-6, "{path} {k}: {x} vs {y}"),
                _ => assert_eq!(va, vb, "{path} {k}"),
            }
        }
    }
}

#[test]
fn resume_after_sigkill_equals_a_clean_run() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 60, 8.0);
    let clean = tmp.path().join("clean.jsonl");
    let status = bin()
        .args(["screen", "--no-progress", "-o"])
        .arg(&clean)
        .arg("--model")
        .arg(&model)
        .arg(&cat)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "the broken file fails");
    let clean_rows = by_path(&rows(&clean));
    assert_eq!(clean_rows.len(), 61);

    // Kill a slow run (one thread, one window per batch) once it has written a few rows.
    let out = tmp.path().join("killed.jsonl");
    let mut child = bin()
        .args([
            "screen",
            "--no-progress",
            "--threads",
            "1",
            "--batch",
            "1",
            "-o",
        ])
        .arg(&out)
        .arg("--model")
        .arg(&model)
        .arg(&cat)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let lines = std::fs::read_to_string(&out)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if lines >= 5 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = std::fs::read_to_string(&out).unwrap();
    let written = partial.lines().count();
    assert!(
        (5..41).contains(&written),
        "killed after {written} rows: the run was too fast to interrupt"
    );
    // As if the kill had landed in the middle of a row:
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .unwrap()
        .write_all(b"{\"path\":\"/half/a/row")
        .unwrap();

    let resumed = bin()
        .args(["screen", "--no-progress", "--resume", "-o"])
        .arg(&out)
        .arg("--model")
        .arg(&model)
        .arg(&cat)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    // exit status covers this run's inputs: 1 only if the broken file was still to do
    assert!(matches!(resumed.status.code(), Some(0 | 1)), "{stderr}");
    assert!(stderr.contains("cut a torn last row"), "{stderr}");
    assert!(
        stderr.contains("already in the report, skipped"),
        "{stderr}"
    );
    let all = rows(&out);
    assert_eq!(all.len(), 61, "no row lost, none duplicated");
    assert_eq!(all.iter().filter(|r| r["error"].is_string()).count(), 1);
    assert_same_rows(&by_path(&all), &clean_rows);

    // Resuming a finished report does nothing more.
    let again = bin()
        .args(["screen", "--no-progress", "--resume", "-o"])
        .arg(&out)
        .arg("--model")
        .arg(&model)
        .arg(&cat)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 files screened"));
    assert_eq!(rows(&out).len(), 61);
}

use std::io::Write;

#[test]
fn shards_partition_the_catalog_and_merge_checks_gaps_and_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 12, 1.5);
    // the catalog as a list, the way a cluster job would get it
    let (list, names) = write_list(tmp.path(), &cat);

    let mut shard_files = Vec::new();
    let mut union = BTreeMap::new();
    for i in 0..3 {
        let out = tmp.path().join(format!("shard{i}.jsonl"));
        let status = bin()
            .args([
                "screen",
                "--no-progress",
                "--shard",
                &format!("{i}/3"),
                "--files-from",
            ])
            .arg(&list)
            .arg("-o")
            .arg(&out)
            .arg("--model")
            .arg(&model)
            .status()
            .unwrap();
        assert!(matches!(status.code(), Some(0 | 1)));
        for (p, r) in by_path(&rows(&out)) {
            assert!(
                Shard { index: i, count: 3 }.contains(Path::new(&p)),
                "{p} is not in shard {i}"
            );
            assert!(union.insert(p.clone(), r).is_none(), "{p} is in two shards");
        }
        shard_files.push(out);
    }
    assert_eq!(
        union.keys().cloned().collect::<Vec<_>>(),
        names,
        "the shards' union is the catalog"
    );
    // Each shard holds exactly its share (the split hashes the temporary paths, so a shard may
    // by chance be empty: about 1.5 % of runs for 13 inputs over 3 shards).
    for (i, f) in shard_files.iter().enumerate() {
        let expected = names
            .iter()
            .filter(|n| {
                Shard {
                    index: i as u64,
                    count: 3,
                }
                .contains(Path::new(n))
            })
            .count();
        assert_eq!(rows(f).len(), expected, "shard {i}/3");
    }

    // merge: complete and clean
    let merged = tmp.path().join("merged.jsonl");
    let m = bin()
        .arg("merge")
        .args(&shard_files)
        .arg("-o")
        .arg(&merged)
        .arg("--expect")
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(
        m.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );
    assert_eq!(by_path(&rows(&merged)).len(), names.len());
    // merge: a shard missing, and a shard given twice
    let m = bin()
        .arg("merge")
        .arg(&shard_files[0])
        .arg(&shard_files[0])
        .arg(&shard_files[1])
        .arg("--expect")
        .arg(&list)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&m.stderr);
    assert_eq!(m.status.code(), Some(1));
    let dup = rows(&shard_files[0]).len();
    let missing = rows(&shard_files[2]).len();
    assert!(
        stderr.contains(&format!("{dup} duplicates, {missing} missing")),
        "{stderr}"
    );

    // the Slurm array variables select the same shard as --shard
    let out = tmp.path().join("slurm.jsonl");
    let status = bin()
        .args(["screen", "--no-progress", "--files-from"])
        .arg(&list)
        .arg("-o")
        .arg(&out)
        .arg("--model")
        .arg(&model)
        .env("SLURM_ARRAY_TASK_ID", "11")
        .env("SLURM_ARRAY_TASK_MIN", "10")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .status()
        .unwrap();
    assert!(matches!(status.code(), Some(0 | 1)));
    assert_eq!(
        by_path(&rows(&out)).keys().collect::<Vec<_>>(),
        by_path(&rows(&shard_files[1])).keys().collect::<Vec<_>>()
    );
}

/// The command drivers are library calls (the binary only parses arguments): two shards screened
/// with `screen::command::run` and merged with `merge::run` give the single CLI run's rows.
#[test]
fn screen_and_merge_run_as_library_calls() {
    use deepscreen::backend::BackendKind;
    use deepscreen::screen::command::{self, ScreenJob};
    use deepscreen::screen::merge::{self, MergeJob};
    use deepscreen::screen::report::Format;

    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 5, 1.5);
    let (list, names) = write_list(tmp.path(), &cat);

    let mut shards = Vec::new();
    let mut screened = 0;
    for i in 0..2 {
        let output = tmp.path().join(format!("part{i}.jsonl"));
        let summary = command::run(&ScreenJob {
            paths: vec![],
            files_from: Some(list.display().to_string()),
            model: model.display().to_string(),
            backend: BackendKind::Cpu,
            batch: 4,
            threads: Some(1),
            format: Format::Jsonl,
            output: Some(output.clone()),
            threshold: None,
            segments: false,
            progress: false,
            resume: false,
            shard: Some(format!("{i}/2").parse().unwrap()),
            ordered: false,
        })
        .unwrap();
        assert_eq!(
            summary.failed,
            rows(&output)
                .iter()
                .filter(|r| !r["error"].is_null())
                .count()
        );
        screened += summary.files;
        shards.push(output);
    }
    assert_eq!(screened, names.len());
    let merged = tmp.path().join("merged.jsonl");
    let report = merge::run(&MergeJob {
        reports: shards,
        output: Some(merged.clone()),
        format: None,
        expect: Some(list.clone()),
    })
    .unwrap();
    assert_eq!(report.rows, names.len());
    assert!(report.duplicates.is_empty() && report.missing.is_empty());

    let whole = tmp.path().join("whole.jsonl");
    let status = bin()
        .args([
            "screen",
            "--no-progress",
            "--backend",
            "cpu",
            "--files-from",
        ])
        .arg(&list)
        .arg("-o")
        .arg(&whole)
        .arg("--model")
        .arg(&model)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "the broken file fails");
    assert_same_rows(&by_path(&rows(&merged)), &by_path(&rows(&whole)));
}

#[test]
fn shard_spec_and_environment() {
    assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
    assert!("5/5".parse::<Shard>().is_err());
    assert!("1/0".parse::<Shard>().is_err());
    assert!("x".parse::<Shard>().is_err());
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(Shard::from_vars(env(&[])).unwrap(), None);
    assert_eq!(
        Shard::from_vars(env(&[
            ("JOB_COMPLETION_INDEX", "3"),
            ("DEEPSCREEN_SHARD_COUNT", "8")
        ]))
        .unwrap(),
        Some(Shard { index: 3, count: 8 })
    );
    let e = Shard::from_vars(env(&[("JOB_COMPLETION_INDEX", "3")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("DEEPSCREEN_SHARD_COUNT"), "{e}");
    assert_eq!(
        Shard::from_vars(env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "5")
        ]))
        .unwrap(),
        Some(Shard { index: 4, count: 5 })
    );
    // stable: the same path always hashes to the same shard (xxh3, fixed seed)
    let s = Shard { index: 0, count: 7 };
    let picks: Vec<bool> = (0..50)
        .map(|i| s.contains(Path::new(&format!("/music/{i}.flac"))))
        .collect();
    assert_eq!(
        picks,
        (0..50)
            .map(|i| s.contains(Path::new(&format!("/music/{i}.flac"))))
            .collect::<Vec<_>>()
    );
    let hits = picks.iter().filter(|b| **b).count();
    assert!(
        (2..=14).contains(&hits),
        "about 1/7 of paths in a shard, got {hits}/50"
    );
}

#[test]
fn ordered_rows_follow_the_input_list() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = tmp.path().join("c");
    std::fs::create_dir(&cat).unwrap();
    // a long file first, so it finishes last without --ordered
    write_wav(&cat.join("long.wav"), 30.0, 300.0);
    let mut list = vec![cat.join("long.wav").display().to_string()];
    for i in 0..6 {
        let p = cat.join(format!("short{i}.wav"));
        write_wav(&p, 1.2, 500.0 + i as f32);
        list.push(p.display().to_string());
    }
    let list_file = tmp.path().join("list.txt");
    std::fs::write(&list_file, list.join("\n")).unwrap();
    let out = bin()
        .args(["screen", "--ordered", "--threads", "2", "--files-from"])
        .arg(&list_file)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, list);
}

fn peak_rss(stderr: &str) -> u64 {
    let at = stderr
        .find("peak RSS ")
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
    stderr[at + 9..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn memory_does_not_grow_with_file_length() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    // Both fill many full batches (32 windows = 16.5 s), so the forward pass's working set is
    // the same; only the length differs, 15-fold.
    let short = tmp.path().join("two_minutes.wav");
    let long = tmp.path().join("thirty_minutes.wav");
    write_wav(&short, 120.0, 440.0);
    write_wav(&long, 1800.0, 440.0); // 57 MB of PCM
    let run = |p: &Path| {
        let out = bin()
            .args(["screen", "--threads", "2", "--model"])
            .arg(&model)
            .arg(p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        peak_rss(&String::from_utf8_lossy(&out.stderr))
    };
    let (a, b) = (run(&short), run(&long));
    assert!(
        b <= a + 32,
        "peak RSS {b} MiB for 30 min vs {a} MiB for 10 s: memory grows with length"
    );
}

#[test]
fn bench_reports_decode_and_backend_throughput() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 4, 3.0);
    let out = bin()
        .args([
            "bench",
            "--backends",
            "cpu",
            "--threads",
            "1,2",
            "--catalog",
        ])
        .arg(&cat)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("(5 files)"), "{text}");
    for (label, threads) in [("decode", "1"), ("decode", "2"), ("cpu", "1"), ("cpu", "2")] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().take(2).eq([label, threads]))
            .unwrap_or_else(|| panic!("no {label} row for {threads} threads in:\n{text}"));
        let realtime: f64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert!(realtime > 1.0, "{line}");
    }
}

#[test]
fn synthetic_bench_times_each_stage_and_compares_with_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let out = bin()
        .args([
            "bench",
            "--backends",
            "cpu",
            "--batch",
            "4",
            "--repeats",
            "2",
            "--model",
        ])
        .arg(&model)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("catalog-test") && l.contains(" cpu "))
        .unwrap_or_else(|| panic!("no cpu row in:\n{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    for c in &cols[2..8] {
        assert!(c.parse::<f64>().unwrap() > 0.0, "{row}");
    }
    assert_eq!(cols[8], "0.00e0", "cpu against itself: {row}");
}

/// `bench` as a library call writes its table to any writer: a synthetic run on the CPU.
#[test]
fn bench_runs_as_a_library_call() {
    use deepscreen::backend::BackendKind;
    use deepscreen::bench::{self, BenchJob};

    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let mut out = Vec::new();
    let job = BenchJob {
        catalog: None,
        model: Some(model.display().to_string()),
        repeats: 1,
        backends: vec![BackendKind::Cpu],
        threads: vec![],
        batch: 3,
    };
    bench::run(&job, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("catalog-test") && l.contains(" cpu "))
        .unwrap_or_else(|| panic!("no cpu row in:\n{text}"));
    assert!(row.ends_with("0.00e0"), "cpu against itself: {row}");
}

/// `screen --backend cuda` end to end on the CUDA emulator (tests/cuda_emulator/): many small
/// batches, so the scorer keeps one in flight while it submits the next, through the CUDA
/// backend's staged uploads and queued readbacks. Every row must match the CPU backend's.
#[test]
fn screen_on_the_cuda_emulator_matches_the_cpu() {
    let Some(emulator) = common::cuda_emulator::build() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 6, 4.0);
    let lib_path = common::cuda_emulator::library_path(emulator.path());
    let screen = |backend: &str| {
        let out_file = tmp.path().join(format!("{backend}.jsonl"));
        let out = bin()
            .args([
                "screen",
                "--backend",
                backend,
                "--batch",
                "3",
                "--threads",
                "2",
            ])
            .arg("--model")
            .arg(&model)
            .arg("-o")
            .arg(&out_file)
            .arg(&cat)
            .env("LD_LIBRARY_PATH", &lib_path)
            .output()
            .unwrap();
        // one broken file in the catalog: exit code 1 (some files failed)
        assert_eq!(
            out.status.code(),
            Some(1),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        by_path(&rows(&out_file))
    };
    let cpu = screen("cpu");
    let cuda = screen("cuda");
    assert_eq!(cpu.len(), 7);
    assert_eq!(
        cpu.keys().collect::<Vec<_>>(),
        cuda.keys().collect::<Vec<_>>()
    );
    let mut compared = 0;
    for (path, want) in &cpu {
        let got = &cuda[path];
        assert_eq!(got["backend"], "cuda", "{path}");
        assert_eq!(got["error"].is_null(), want["error"].is_null(), "{path}");
        if let (Some(a), Some(b)) = (got["score"].as_f64(), want["score"].as_f64()) {
            assert!((a - b).abs() <= 1e-4, "{path}: cuda {a} vs cpu {b}");
            assert_eq!(got["windows"], want["windows"], "{path}");
            compared += 1;
        }
    }
    assert_eq!(compared, 6, "every readable track scored on both");
}
