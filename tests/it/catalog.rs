//! Catalog-scale behaviour: resume after SIGKILL (torn line repaired, no duplicate, no lost
//! row), shard partition and merge, scheduler environment defaults, input order, and memory
//! that does not grow with file length.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deepscreen::screen::shard::Shard;
use serde_json::{Value, json};

use crate::common::bin;

fn write_model(dir: &Path) -> PathBuf {
    let layers = json!([
        {"type": "conv2d", "name": "c1", "out_channels": 8, "kernel": [3, 3], "padding": [1, 1], "activation": "relu"},
        {"type": "max_pool2d", "kernel": [2, 2]},
        {"type": "global_avg_pool"},
        {"type": "linear", "name": "fc", "out_features": 1}
    ]);
    crate::common::write_small_model(dir, "catalog-test", None, layers, 5)
}

fn write_wav(path: &Path, seconds: f32, freq: f32) {
    crate::common::write_wav_16k(path, seconds, |t| {
        0.3 * (2.0 * std::f32::consts::PI * freq * t).sin()
    });
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

/// `deepscreen merge INPUTS [-o OUT] [--expect LIST]`.
fn merge_cmd<P: AsRef<Path>>(
    inputs: &[P],
    out: Option<&Path>,
    expect: Option<&Path>,
) -> std::process::Output {
    let mut cmd = bin();
    cmd.arg("merge");
    for i in inputs {
        cmd.arg(i.as_ref());
    }
    if let Some(o) = out {
        cmd.arg("-o").arg(o);
    }
    if let Some(e) = expect {
        cmd.arg("--expect").arg(e);
    }
    cmd.output().unwrap()
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
    // the exit status speaks for the whole report: the broken file's row is an error row
    assert_eq!(resumed.status.code(), Some(1), "{stderr}");
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
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 files screened"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("1 failed in earlier runs"));
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
    let m = merge_cmd(&shard_files, Some(&merged), Some(&list));
    assert_eq!(
        m.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );
    assert_eq!(by_path(&rows(&merged)).len(), names.len());
    // merge: a shard missing, and a shard given twice
    let m = merge_cmd(
        &[&shard_files[0], &shard_files[0], &shard_files[1]],
        None,
        Some(&list),
    );
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
    use deepscreen::report::Format;
    use deepscreen::screen::command::{self, ScreenJob};
    use deepscreen::screen::merge::{self, MergeJob};

    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 5, 1.5);
    let (list, names) = write_list(tmp.path(), &cat);

    let mut shards = Vec::new();
    let mut screened = 0;
    for i in 0..2 {
        let output = tmp.path().join(format!("part{i}.jsonl"));
        let outcome = command::run(&ScreenJob {
            paths: vec![],
            files_from: Some(list.display().to_string()),
            model: model.display().to_string(),
            exact: false,
            backend: BackendKind::Cpu,
            batch: Some(4),
            threads: Some(1),
            format: Format::Jsonl,
            output: Some(output.clone()),
            threshold: None,
            segment_threshold: None,
            segments: false,
            progress: false,
            resume: false,
            retry_failed: false,
            force: false,
            shard: Some(format!("{i}/2").parse().unwrap()),
            ordered: false,
            vocals: Default::default(),
        })
        .unwrap();
        let summary = outcome.summary;
        assert_eq!(outcome.failed_before, 0);
        assert!(outcome.stopped_by.is_none());
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
        exact: false,
        repeats: 1,
        backends: vec![BackendKind::Cpu],
        threads: vec![],
        batch: Some(3),
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
    let Some(emulator) = crate::common::cuda_emulator::build() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 6, 4.0);
    let lib_path = crate::common::cuda_emulator::library_path(emulator.path());
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

// ---------------------------------------------------------------- report integrity

/// `screen` over `catalog` with the test model, output to `out`, extra arguments after.
fn screen_to(model: &Path, catalog: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    bin()
        .args(["screen", "--no-progress", "--model"])
        .arg(model)
        .arg(catalog)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn report_format_follows_the_extension_and_a_contradiction_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 2, 1.5);
    let csv = tmp.path().join("out.csv");
    let out = screen_to(&model, &cat, &csv, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out)); // broken.wav
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("path,score,verdict,threshold,"),
        "not CSV: {text}"
    );
    assert_eq!(text.lines().count(), 1 + 3);

    let json = tmp.path().join("out.json");
    assert_eq!(screen_to(&model, &cat, &json, &[]).status.code(), Some(1));
    assert_eq!(rows(&json).len(), 3);

    // A contradiction is fatal before anything is written.
    let clash = tmp.path().join("clash.csv");
    let out = screen_to(&model, &cat, &clash, &["--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("contradicts"),
        "{}",
        stderr_of(&out)
    );
    assert!(!clash.exists());
}

#[test]
fn resume_refuses_another_format_model_or_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 2, 1.5);
    // no extension: the format comes from --format alone
    let report = tmp.path().join("report.out");
    let jsonl = ["-f", "jsonl"];
    assert_eq!(
        screen_to(&model, &cat, &report, &jsonl).status.code(),
        Some(1)
    );
    let before = std::fs::read(&report).unwrap();
    let other_model = tmp.path().join("other.safetensors");
    // the same file under another id (same length: the header's offsets stay right)
    let mut bytes = std::fs::read(&model).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"catalog-test")
        .unwrap();
    bytes[at..at + 12].copy_from_slice(b"catalog-oops");
    std::fs::write(&other_model, bytes).unwrap();
    for (extra, needle) in [
        (
            vec!["--resume", "--format", "csv"],
            "it is a JSON Lines report",
        ),
        (
            vec!["--resume", "-f", "jsonl", "-t", "0.25"],
            "this run uses 0.25",
        ),
    ] {
        let out = screen_to(&model, &cat, &report, &extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(stderr_of(&out).contains(needle), "{}", stderr_of(&out));
        assert_eq!(
            std::fs::read(&report).unwrap(),
            before,
            "{extra:?} changed the report"
        );
    }
    let out = screen_to(&other_model, &cat, &report, &["--resume", "-f", "jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("written by model \"catalog-test\""),
        "{}",
        stderr_of(&out)
    );
    // Not an embedded model: the suggestion is its file, not an id `--model` would refuse.
    assert!(
        stderr_of(&out).contains("--model and the file of model \"catalog-test\""),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read(&report).unwrap(), before);
    // The same model and threshold resume; the kept error row still sets the exit code.
    let out = screen_to(&model, &cat, &report, &["--resume", "-f", "jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("1 failed in earlier runs"));
    assert_eq!(std::fs::read(&report).unwrap(), before);
}

#[test]
fn a_csv_report_of_an_older_version_is_read_but_not_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 2, 1.5);
    let current = tmp.path().join("current.csv");
    assert_eq!(
        screen_to(&model, &cat, &current, &[]).status.code(),
        Some(1)
    );
    let mut reader = csv::Reader::from_path(&current).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.iter().next_back(), Some("vocal_threshold"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // The same rows as reports of before the vocal stage (five columns fewer), before the
    // segment rule (nine fewer) and before the cascade (ten fewer).
    for dropped in [5, 9, 10] {
        let legacy = tmp.path().join(format!("legacy-{dropped}.csv"));
        let mut writer = csv::Writer::from_path(&legacy).unwrap();
        let keep = header.len() - dropped;
        writer.write_record(header.iter().take(keep)).unwrap();
        for record in &records {
            writer.write_record(record.iter().take(keep)).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        let before = std::fs::read(&legacy).unwrap();

        // Appending would mix rows of two widths in one file: refused, the file untouched.
        let out = screen_to(&model, &cat, &legacy, &["--resume"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr_of(&out).contains("lacks the cascade_skipped, segment_* or vocal_* columns"),
            "{}",
            stderr_of(&out)
        );
        assert_eq!(std::fs::read(&legacy).unwrap(), before);

        // Merging rewrites it with this version's columns, every row kept; that report resumes.
        let merged = tmp.path().join(format!("merged-{dropped}.csv"));
        let out = merge_cmd(&[&legacy], Some(&merged), None);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let mut reader = csv::Reader::from_path(&merged).unwrap();
        assert_eq!(reader.headers().unwrap(), &header);
        assert_eq!(reader.records().count(), 3);
        let out = screen_to(&model, &cat, &merged, &["--resume"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains("1 failed in earlier runs"));
    }
}

#[test]
fn a_second_run_on_a_locked_report_stops_without_touching_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 2, 1.5);
    let report = tmp.path().join("report.jsonl");
    assert_eq!(screen_to(&model, &cat, &report, &[]).status.code(), Some(1));
    let before = std::fs::read(&report).unwrap();
    // Another writer holds the report (the lock a running `screen` takes).
    let holder = std::fs::OpenOptions::new()
        .append(true)
        .open(&report)
        .unwrap();
    holder.try_lock().unwrap();
    for extra in [vec![], vec!["--resume"]] {
        let out = screen_to(&model, &cat, &report, &extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = stderr_of(&out);
        assert!(
            err.contains("being written by another deepscreen run"),
            "{err}"
        );
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        assert_eq!(std::fs::read(&report).unwrap(), before, "{extra:?}");
    }
    drop(holder);
    assert_eq!(
        screen_to(&model, &cat, &report, &["--force"]).status.code(),
        Some(1)
    );
}

#[test]
fn pipes_and_devices_are_written_without_sync_and_cannot_be_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 3, 1.5);
    let out = screen_to(&model, &cat, Path::new("/dev/null"), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let fifo = tmp.path().join("rows.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = screen_to(&model, &cat, &fifo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_eq!(reader.join().unwrap().lines().count(), 4);
    let out = screen_to(&model, &cat, Path::new("/dev/null"), &["--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--resume needs a regular file"));
}

#[test]
fn merge_finds_each_reports_format_and_refuses_mixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 3, 1.5);
    let (list, names) = write_list(tmp.path(), &cat);
    let parts: Vec<PathBuf> = (0..2)
        .map(|i| {
            // JSON Lines whatever the name says (--format given, a .txt name)
            let p = tmp.path().join(format!("part{i}.txt"));
            let shard = format!("{i}/2");
            let out = screen_to(&model, &cat, &p, &["--shard", &shard, "-f", "jsonl"]);
            assert!(out.status.code().unwrap() <= 1, "{}", stderr_of(&out));
            p
        })
        .collect();
    let merged = tmp.path().join("merged.jsonl");
    let out = merge_cmd(&parts, Some(&merged), Some(&list));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(by_path(&rows(&merged)).len(), names.len());

    let csv = tmp.path().join("all.csv");
    assert_eq!(screen_to(&model, &cat, &csv, &[]).status.code(), Some(1));
    let foreign = tmp.path().join("foreign.csv");
    std::fs::write(&foreign, "file,prob\na.wav,0.5\n").unwrap();
    let at_other_threshold = tmp.path().join("t.jsonl");
    screen_to(&model, &cat, &at_other_threshold, &["-t", "0.3"]);
    // (The merged report, not a shard: a shard of 3 files can be empty, its paths being random
    // temporary names.)
    for (inputs, needle) in [
        (vec![&merged, &csv], "cannot merge a JSON Lines report"),
        (vec![&foreign], "is not a deepscreen report"),
        (vec![&merged, &at_other_threshold], "different runs"),
    ] {
        let out = merge_cmd(&inputs, Some(&tmp.path().join("never.jsonl")), None);
        assert_eq!(out.status.code(), Some(2), "{inputs:?}");
        assert!(stderr_of(&out).contains(needle), "{}", stderr_of(&out));
    }
    // CSV merges into CSV with one header.
    let out = merge_cmd(&[&csv, &csv], None, None);
    assert_eq!(out.status.code(), Some(1)); // every row is a duplicate the second time
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("path,score,verdict,threshold,"), "{text}");
    assert_eq!(text.lines().count(), 1 + names.len());
}

#[test]
fn retry_failed_screens_error_rows_again() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 2, 1.5);
    let report = tmp.path().join("report.csv");
    assert_eq!(screen_to(&model, &cat, &report, &[]).status.code(), Some(1));
    // The broken file is mended; a plain resume keeps its error row, --retry-failed does not.
    write_wav(&cat.join("broken.wav"), 1.5, 440.0);
    let out = screen_to(&model, &cat, &report, &["--resume"]);
    assert_eq!(out.status.code(), Some(1));
    let out = screen_to(&model, &cat, &report, &["--resume", "--retry-failed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("dropped 1 error rows"));
    let mut reader = csv::Reader::from_path(&report).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 3);
    let broken: Vec<_> = records
        .iter()
        .filter(|r| r[0].ends_with("broken.wav"))
        .collect();
    assert_eq!(broken.len(), 1);
    assert!(broken[0][1].parse::<f32>().is_ok(), "{:?}", broken[0]);
    let out = bin()
        .args(["screen", "--retry-failed"])
        .arg(&cat)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigterm_stops_taking_inputs_and_resume_finishes_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog(tmp.path(), 6, 1.0);
    let (list, names) = write_list(tmp.path(), &cat);
    let report = tmp.path().join("report.jsonl");
    let mut child = bin()
        .args(["screen", "--no-progress", "--files-from", "-", "--model"])
        .arg(&model)
        .arg("-o")
        .arg(&report)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write as _;
    writeln!(stdin, "{}\n{}", names[0], names[1]).unwrap();
    stdin.flush().unwrap();
    // Wait for both rows, then stop the run while it waits for more inputs.
    wait_for_lines(&report, 2);
    signal(&child, "-TERM");
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The next line arrives after the signal: it is not screened.
    writeln!(stdin, "{}", names[2]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("stopped by SIGTERM"));
    // The signal was acknowledged when it came, not only in the summary.
    assert!(
        stderr_of(&out).contains("SIGTERM: stopping: no new file is started"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(rows(&report).len(), 2);
    let out = bin()
        .args(["screen", "--no-progress", "--resume", "--files-from"])
        .arg(&list)
        .arg("--model")
        .arg(&model)
        .arg("-o")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out)); // broken.wav
    assert_eq!(by_path(&rows(&report)).len(), names.len());
}

/// Wait (up to a minute) until `path` holds `lines` lines: rows a running screen has written.
fn wait_for_lines(path: &Path, lines: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(path).map_or(0, |t| t.lines().count()) < lines {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never reached {lines} lines",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Send `sig` (as `kill` takes it, e.g. "-TERM") to a running child.
fn signal(child: &std::process::Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// `DIR/catalog`: a.wav (2 s), b-long.wav (30 minutes), c.wav (2 s): a stop that comes once
/// a.wav is done finds b-long.wav being screened.
fn catalog_with_a_30_minute_file(dir: &Path) -> PathBuf {
    let cat = dir.join("catalog");
    std::fs::create_dir(&cat).unwrap();
    write_wav(&cat.join("a.wav"), 2.0, 440.0);
    write_wav(&cat.join("b-long.wav"), 1800.0, 330.0);
    write_wav(&cat.join("c.wav"), 2.0, 550.0);
    cat
}

/// `screen` with one decoder and rows in input order, into `report`; stderr captured.
fn one_at_a_time(model: &Path, report: &Path) -> Command {
    let mut cmd = bin();
    cmd.args(["screen", "--no-progress", "-j", "1", "--ordered", "--model"])
        .arg(model)
        .arg("-o")
        .arg(report)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// SIGTERM while a 30-minute file is being screened: the process exits within 5 s with 143,
/// the report holds exactly the rows finished before (the long file is dropped, no partial row),
/// and `--resume` screens the long file and the one never started.
#[test]
fn sigterm_during_a_30_minute_file_exits_within_seconds_and_resume_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog_with_a_30_minute_file(tmp.path());
    let (list, names) = write_list(tmp.path(), &cat);
    let report = tmp.path().join("report.jsonl");
    let screen = |extra: &[&str]| {
        let mut cmd = one_at_a_time(&model, &report);
        cmd.arg("--files-from").arg(&list).args(extra);
        cmd
    };
    let child = screen(&[]).spawn().unwrap();
    wait_for_lines(&report, 1);
    // a.wav is done; the 30-minute file is in flight (screening it takes over a second).
    std::thread::sleep(std::time::Duration::from_millis(100));
    let signalled = std::time::Instant::now();
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    assert!(took.as_secs_f64() < 5.0, "stopping took {took:?}");
    // Said when the signal came: what stops, and how many files it drops.
    assert!(
        stderr_of(&out)
            .contains("SIGTERM: stopping: no new file is started; 1 file being decoded dropped"),
        "{}",
        stderr_of(&out)
    );
    let written = rows(&report);
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0]["path"].as_str().unwrap().ends_with("a.wav"));
    let out = screen(&["--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let done = by_path(&rows(&report));
    assert_eq!(done.len(), names.len(), "{done:?}");
    let long = done.keys().find(|p| p.ends_with("b-long.wav")).unwrap();
    assert!((done[long]["duration_s"].as_f64().unwrap() - 1800.0).abs() < 1e-6);
}

/// `--force` over an existing report writes the new one beside it (`.NAME.replacing`) and
/// renames it over the old one when the run ends. Killed outright mid-run (before the rename),
/// the old report is intact byte for byte; stopped by SIGTERM, the finished rows replace it and
/// `--resume` completes them; a run that ends normally replaces it and leaves nothing beside it.
#[test]
fn force_replaces_a_report_only_when_the_run_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = catalog_with_a_30_minute_file(tmp.path());
    let (list, names) = write_list(tmp.path(), &cat);
    let report = tmp.path().join("report.jsonl");
    let staged = tmp.path().join(".report.jsonl.replacing");
    let screen = |extra: &[&str]| {
        let mut cmd = one_at_a_time(&model, &report);
        cmd.args(extra);
        cmd
    };
    let out = screen(&[]).arg(cat.join("a.wav")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // Start a --force run over the whole list and signal it once a.wav's row is staged.
    let interrupted = |sig: &str, old: &[u8]| {
        let list = list.display().to_string();
        let child = screen(&["--force", "--files-from", &list]).spawn().unwrap();
        wait_for_lines(&staged, 1);
        assert_eq!(
            std::fs::read(&report).unwrap(),
            old,
            "replaced before the end"
        );
        signal(&child, sig);
        child.wait_with_output().unwrap()
    };
    // Killed outright (SIGKILL: no clean-up) mid-run: the old report is as it was.
    let old = std::fs::read(&report).unwrap();
    let out = interrupted("-KILL", &old);
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_eq!(std::fs::read(&report).unwrap(), old);
    assert!(staged.exists(), "the partial replacement is left beside it");
    // A --force run that ends normally replaces the report; the killed run's leftover is
    // reused and nothing stays beside it.
    let out = screen(&["--force"])
        .arg(cat.join("c.wav"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let written = rows(&report);
    assert_eq!(written.len(), 1);
    assert!(written[0]["path"].as_str().unwrap().ends_with("c.wav"));
    assert!(!staged.exists());
    // Stopped by SIGTERM: the run ends, and its finished rows replace the old report.
    let old = std::fs::read(&report).unwrap();
    let out = interrupted("-TERM", &old);
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    assert!(!staged.exists());
    let written = rows(&report);
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0]["path"].as_str().unwrap().ends_with("a.wav"));
    let list = list.display().to_string();
    let out = screen(&["--resume", "--files-from", &list])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(by_path(&rows(&report)).len(), names.len());
}

#[test]
fn names_that_differ_only_in_non_utf8_bytes_stay_apart_and_repeats_are_screened_once() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let cat = tmp.path().join("catalog");
    std::fs::create_dir_all(&cat).unwrap();
    let names: Vec<&[u8]> = vec![b"a\xff.wav", b"a\xfe.wav"];
    for (i, n) in names.iter().enumerate() {
        write_wav(
            &cat.join(std::ffi::OsStr::from_bytes(n)),
            1.0,
            300.0 + 100.0 * i as f32,
        );
    }
    // the list names each file twice
    let mut list = Vec::new();
    for _ in 0..2 {
        for n in &names {
            list.extend_from_slice(cat.as_os_str().as_bytes());
            list.push(b'/');
            list.extend_from_slice(n);
            list.push(b'\n');
        }
    }
    let list_path = tmp.path().join("list.txt");
    std::fs::write(&list_path, &list).unwrap();
    let report = tmp.path().join("r.jsonl");
    let run = |extra: &[&str]| {
        bin()
            .args(["screen", "--no-progress", "--files-from"])
            .arg(&list_path)
            .arg("--model")
            .arg(&model)
            .arg("-o")
            .arg(&report)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("2 repeated inputs screened once"));
    let got = rows(&report);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["path"], got[1]["path"], "both show as a\u{FFFD}.wav");
    let mut hex: Vec<String> = got
        .iter()
        .map(|r| r["path_hex"].as_str().unwrap().to_string())
        .collect();
    hex.sort();
    let expect = |n: &[u8]| -> String {
        let mut full = cat.as_os_str().as_bytes().to_vec();
        full.push(b'/');
        full.extend_from_slice(n);
        full.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut want = vec![expect(names[0]), expect(names[1])];
    want.sort();
    assert_eq!(hex, want);
    // Resume knows both are done; merge keeps both.
    let out = run(&["--resume"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr_of(&out).contains("0 files screened"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(rows(&report).len(), 2);
    let out = merge_cmd(&[&report], None, Some(&list_path));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    // A UTF-8 name has no path_hex.
    let plain = tmp.path().join("plain.jsonl");
    let out = screen_to(&model, &tmp.path().join("catalog"), &plain, &[]);
    assert_eq!(out.status.code(), Some(0));
    let cat2 = tmp.path().join("utf8");
    std::fs::create_dir_all(&cat2).unwrap();
    write_wav(&cat2.join("b.wav"), 1.0, 500.0);
    // A second run into the same report replaces it only when asked to.
    assert_eq!(screen_to(&model, &cat2, &plain, &[]).status.code(), Some(2));
    assert_eq!(
        screen_to(&model, &cat2, &plain, &["--force"]).status.code(),
        Some(0)
    );
    assert!(rows(&plain)[0].get("path_hex").is_none());
}

/// A stop drops the files in flight without a row and starts no new one: the first row's
/// callback raises the stop while the one decoder is part-way through a long second file
/// (far more windows than the pipeline buffers), so that file is dropped, the third is never
/// started, and only the first has a row.
#[test]
fn a_stop_drops_the_files_in_flight_without_a_row() {
    use deepscreen::screen::inputs::Input;
    use deepscreen::screen::pipeline::{self, ScreenOptions};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    // b.wav is 30 minutes long: the stop must not wait for it.
    let files = [("a.wav", 2.0), ("b.wav", 1800.0), ("c.wav", 2.0)];
    for (name, seconds) in files {
        write_wav(&tmp.path().join(name), seconds, 300.0);
    }
    let scorer = deepscreen::model::open(
        &model.display().to_string(),
        deepscreen::backend::BackendKind::Cpu,
        false,
    )
    .unwrap();
    let stop = Arc::new(AtomicUsize::new(0));
    let opts = ScreenOptions {
        batch: 2,
        decoders: 1,
        threshold: 0.5,
        segment_rule: None,
        segments: false,
        ordered: true,
        stop: Some(stop.clone()),
        decoding: None,
        vocals: None,
    };
    let inputs = Box::new(
        files
            .map(|(name, _)| Input::File(tmp.path().join(name)))
            .into_iter(),
    );
    let mut rows = Vec::new();
    let summary = pipeline::run(inputs, scorer.as_ref(), &opts, &mut |row| {
        rows.push(row.path.clone());
        stop.store(15, Ordering::Relaxed);
        Ok(())
    })
    .unwrap();
    assert_eq!(rows, vec![tmp.path().join("a.wav").display().to_string()]);
    assert_eq!(summary.files, 1);
    assert_eq!(summary.dropped, 1, "b.wav, part-way");
    assert!(summary.unstarted, "c.wav was never started");
}

/// A stop that finds nothing in flight still tells whether inputs were left unstarted (the
/// report is then incomplete, and `screen` must say so and exit 143, not claim a full report):
/// raised before the run, it leaves both inputs unstarted; raised by the last input's row, it
/// leaves a complete run.
#[test]
fn a_stop_with_nothing_in_flight_tells_whether_inputs_were_left() {
    use deepscreen::screen::inputs::Input;
    use deepscreen::screen::pipeline::{self, ScreenOptions};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    for name in ["a.wav", "b.wav"] {
        write_wav(&tmp.path().join(name), 2.0, 300.0);
    }
    let scorer = deepscreen::model::open(
        &model.display().to_string(),
        deepscreen::backend::BackendKind::Cpu,
        false,
    )
    .unwrap();
    let run = |names: &[&str], stop_at_start: bool| {
        let stop = Arc::new(AtomicUsize::new(if stop_at_start { 15 } else { 0 }));
        let opts = ScreenOptions {
            batch: 2,
            decoders: 2,
            threshold: 0.5,
            segment_rule: None,
            segments: false,
            ordered: false,
            stop: Some(stop.clone()),
            decoding: None,
            vocals: None,
        };
        let inputs: Vec<Input> = names
            .iter()
            .map(|n| Input::File(tmp.path().join(n)))
            .collect();
        let mut rows = 0;
        let summary = pipeline::run(
            Box::new(inputs.into_iter()),
            scorer.as_ref(),
            &opts,
            &mut |_| {
                rows += 1;
                stop.store(15, Ordering::Relaxed);
                Ok(())
            },
        )
        .unwrap();
        (rows, summary)
    };
    let (rows, summary) = run(&["a.wav", "b.wav"], true);
    assert_eq!((rows, summary.files, summary.dropped), (0, 0, 0));
    assert!(summary.unstarted, "both inputs were left unstarted");
    let (rows, summary) = run(&["a.wav"], false);
    assert_eq!((rows, summary.files, summary.dropped), (1, 1, 0));
    assert!(
        !summary.unstarted,
        "the only input finished: nothing was left"
    );
}

/// The progress bar's total is what the run will screen: named files, list lines (a listed
/// directory walked), directories walked as the run walks them (error entries too: each gets a
/// row), the shard's share only; unknown for a list on standard input.
#[test]
fn the_input_total_is_counted_as_the_run_walks() {
    use deepscreen::screen::inputs::{count, stream};
    use deepscreen::screen::shard::Shard;
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalog(tmp.path(), 3, 0.5); // three tracks and broken.wav
    let files: Vec<PathBuf> = ["track000.wav", "track001.wav"]
        .iter()
        .map(|n| cat.join(n))
        .collect();
    assert_eq!(count(files.clone(), None, None), Some(2));
    assert_eq!(count(vec![cat.clone()], None, None), Some(4), "a directory");
    let list = tmp.path().join("list.txt");
    std::fs::write(
        &list,
        format!(
            "{}\n\n{}\r\n{}\n",
            files[0].display(),
            files[1].display(),
            cat.display()
        ),
    )
    .unwrap();
    let list_arg = list.display().to_string();
    assert_eq!(count(files[..1].to_vec(), Some(&list_arg), None), Some(7));
    assert_eq!(count(vec![], Some("-"), None), None, "standard input");
    // Sharded: exactly the inputs the shard takes, as the run filters them.
    let shard: Shard = "1/2".parse().unwrap();
    let in_shard = stream(vec![cat.clone()], None)
        .unwrap()
        .filter(|i| shard.contains(i.path()))
        .count() as u64;
    assert_eq!(count(vec![cat.clone()], None, Some(shard)), Some(in_shard));
}

/// The segment rule (partial fakes): `segment_score` is the strongest run of the rule's length
/// of consecutive windows (its lowest window score), checked against a brute-force search
/// over the row's own per-window scores; a run at or above the rule's threshold makes the
/// verdict synthetic even when the file score cannot (--threshold 1); `--segment-threshold`
/// moves it, `off` removes it, a model without a rule refuses it, and a report decided with
/// one segment threshold is not resumed with another.
#[test]
fn the_segment_rule_flags_a_run_of_high_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = json!([
        {"type": "conv2d", "name": "c1", "out_channels": 8, "kernel": [3, 3], "padding": [1, 1], "activation": "relu"},
        {"type": "global_avg_pool"},
        {"type": "linear", "name": "fc", "out_features": 1}
    ]);
    let rule = json!({"segment_rule": {"windows": 3, "threshold": 0.9}});
    let ruled_dir = tmp.path().join("ruled");
    std::fs::create_dir_all(&ruled_dir).unwrap();
    let ruled = crate::common::write_small_model_with(
        &ruled_dir,
        "segment-test",
        None,
        layers.clone(),
        11,
        rule,
    );
    let plain = crate::common::write_small_model(tmp.path(), "plain-test", None, layers, 11);
    // 12 s whose content changes every 1.5 s (tones, noise, chirps): window scores vary.
    let cat = tmp.path().join("cat");
    std::fs::create_dir_all(&cat).unwrap();
    crate::common::write_wav_16k(&cat.join("mixed.wav"), 12.0, |t| {
        let part = (t / 1.5) as usize;
        let noise = ((t * 16000.0) as u32).wrapping_mul(2654435761) as f32 / u32::MAX as f32 - 0.5;
        match part % 4 {
            0 => 0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin(),
            1 => 0.4 * noise,
            2 => 0.3 * (2.0 * std::f32::consts::PI * (300.0 + 400.0 * t) * t).sin(),
            _ => 0.05 * noise + 0.2 * (2.0 * std::f32::consts::PI * 1800.0 * t).sin(),
        }
    });
    let screen = |model: &Path, name: &str, extra: &[&str]| {
        let out_path = tmp.path().join(name);
        let mut args = vec!["--segments", "--threshold", "1"];
        args.extend_from_slice(extra);
        let out = screen_to(model, &cat, &out_path, &args);
        (out, out_path)
    };
    let (out, report) = screen(&ruled, "default.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let row = rows(&report).remove(0);
    let scores: Vec<f32> = row["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap() as f32)
        .collect();
    assert!(scores.len() >= 20, "{} windows", scores.len());
    let (best, at) = (0..=scores.len() - 3)
        .map(|i| (scores[i..i + 3].iter().copied().fold(f32::MAX, f32::min), i))
        .fold((f32::MIN, 0), |b, c| if c.0 > b.0 { c } else { b });
    assert_eq!(row["segment_score"].as_f64().unwrap() as f32, best);
    let segments = row["segments"].as_array().unwrap();
    assert_eq!(row["segment_start_s"], segments[at]["start_s"]);
    assert_eq!(row["segment_end_s"], segments[at + 2]["end_s"]);
    assert_eq!(row["segment_threshold"].as_f64().unwrap() as f32, 0.9);
    let expected = if best >= 0.9 {
        "synthetic"
    } else {
        "bona-fide"
    };
    assert_eq!(row["verdict"], expected, "run {best}");
    // At the run's own score the rule fires; just above it, it does not; off, no rule at all.
    for (t, verdict) in [(best, "synthetic"), (best + 1e-4, "bona-fide")] {
        let name = format!("at-{t}.jsonl");
        let (out, report) = screen(&ruled, &name, &["--segment-threshold", &t.to_string()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let row = rows(&report).remove(0);
        assert_eq!(row["verdict"], verdict, "segment threshold {t}, run {best}");
        assert_eq!(row["segment_threshold"].as_f64().unwrap() as f32, t);
    }
    let (out, report) = screen(&ruled, "off.jsonl", &["--segment-threshold", "off"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let row = rows(&report).remove(0);
    assert_eq!(row["verdict"], "bona-fide");
    assert!(row["segment_score"].is_null() && row["segment_threshold"].is_null());
    // A model without a rule: the fields are null, and moving its threshold is refused.
    let (out, report) = screen(&plain, "plain.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(rows(&report)[0]["segment_score"].is_null());
    let (out, _) = screen(&plain, "refused.jsonl", &["--segment-threshold", "0.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("has no segment rule"),
        "{}",
        stderr_of(&out)
    );
    // The review page says what the rule saw, and where.
    let (_, report) = screen(
        &ruled,
        "fired.jsonl",
        &["--segment-threshold", &best.to_string()],
    );
    let page = tmp.path().join("review.html");
    let out = bin()
        .args(["review", "-b", "cpu", "--model"])
        .arg(&ruled)
        .arg(&report)
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    let said = format!(
        "Segment rule: every window from {:.1} to {:.1} s scored at least {best:.3}, at or above",
        segments[at]["start_s"].as_f64().unwrap(),
        segments[at + 2]["end_s"].as_f64().unwrap()
    );
    assert!(html.contains(&said), "{said:?} not on the page");
    // Resuming a report decided with another segment threshold is refused.
    let (out, _) = screen(
        &ruled,
        "default.jsonl",
        &["--resume", "--segment-threshold", "0.5"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("segment threshold 0.9"),
        "{}",
        stderr_of(&out)
    );
}
