//! `deepscreen review`: the page a reviewer opens. Rendered in headless Chromium (Debian's
//! `chromium`; `.ci/run` installs it and sets DEEPSCREEN_REQUIRE_CHROMIUM=1, elsewhere the
//! browser tests skip when it is missing): row count, order, sorting and filtering through the
//! page address, a screenshot; and without a browser: the occlusion map against a model built
//! to read one band, embedded audio, labelled DET/ROC, refusals, and a 135,000-row page's size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use deepscreen::backend::BackendKind;
use deepscreen::model::HostTensor;
use deepscreen::model::{self, ModelConfig, file};
use serde_json::{Value, json};

use crate::common::bin;

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run deepscreen");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A small random-weight model: 16 kHz, 1 s windows with 0.5 s hop.
fn write_model(dir: &Path) -> PathBuf {
    let layers = json!([
        {"type": "conv2d", "name": "c1", "out_channels": 8, "kernel": [3, 3], "padding": [1, 1]},
        {"type": "max_pool2d", "kernel": [2, 2]},
        {"type": "global_avg_pool"},
        {"type": "linear", "name": "fc", "out_features": 1}
    ]);
    crate::common::write_small_model(dir, "review-test", Some(0.1), layers, 11)
}

use crate::common::write_wav_16k as write_wav;

/// Tones, chirps and noise of 1.5–4 s (one name with a space and a '#'), one silent file and
/// one that is not audio: every verdict a report can hold.
fn write_catalog(dir: &Path) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = crate::common::rng(5);
    for k in 0..8 {
        let f0 = 150.0 + 170.0 * k as f32;
        let secs = 1.5 + 0.35 * k as f32;
        let noise: Vec<f32> =
            crate::common::random_vec(&mut rng, (secs * 16000.0) as usize + 1, -1.0, 1.0);
        let name = if k == 3 {
            "a tone #3.wav".to_string()
        } else {
            format!("tone{k}.wav")
        };
        write_wav(&dir.join(name), secs, |t| {
            let chirp = (2.0 * std::f32::consts::PI * (f0 + 300.0 * t) * t).sin();
            0.3 * chirp + 0.02 * k as f32 * noise[(t * 16000.0) as usize]
        });
    }
    write_wav(&dir.join("silent.wav"), 2.0, |_| 0.0);
    std::fs::write(dir.join("broken.wav"), b"RIFF not really a wave file").unwrap();
    10
}

/// Screen the catalog at the median score as threshold, so about half is flagged.
fn screened(dir: &Path) -> (PathBuf, PathBuf, Vec<Value>) {
    let model = write_model(dir);
    let catalog = dir.join("catalog");
    let n = write_catalog(&catalog);
    let first = dir.join("first.jsonl");
    run(bin()
        .args(["screen", "-b", "cpu", "--model"])
        .arg(&model)
        .arg(&catalog)
        .arg("-o")
        .arg(&first));
    let mut scores: Vec<f64> = rows(&first)
        .iter()
        .filter_map(|r| r["score"].as_f64())
        .collect();
    scores.sort_by(f64::total_cmp);
    let threshold = scores[scores.len() / 2];
    let report = dir.join("report.jsonl");
    let out = run(bin()
        .args([
            "screen",
            "-b",
            "cpu",
            "--segments",
            "--threshold",
            &threshold.to_string(),
            "--model",
        ])
        .arg(&model)
        .arg(&catalog)
        .arg("-o")
        .arg(&report));
    assert_eq!(out.status.code(), Some(1), "one input is broken");
    let rows = rows(&report);
    assert_eq!(rows.len(), n);
    (model, report, rows)
}

fn rows(report: &Path) -> Vec<Value> {
    std::fs::read_to_string(report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            !crate::common::required("chromium"),
            "DEEPSCREEN_REQUIRE_CHROMIUM=1 but no chromium here (apt-get install chromium)"
        );
        eprintln!("skipped: no chromium here (apt-get install chromium)");
    }
    found
}

/// Run headless Chromium on `url` with `args` (--dump-dom, --screenshot=…), its stdout.
fn browse(chromium: &str, url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("start chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The table rows of a dumped DOM: each row's cells' text.
fn table_rows(dom: &str) -> Vec<Vec<String>> {
    let body = dom
        .split("<tbody>")
        .nth(1)
        .unwrap()
        .split("</tbody>")
        .next()
        .unwrap();
    body.split("<tr")
        .skip(1)
        .map(|tr| {
            tr.split("<td")
                .skip(1)
                .map(|td| {
                    let inner = &td[td.find('>').unwrap() + 1..td.find("</td>").unwrap()];
                    // Strip a link around the path.
                    let text = match inner.find("<a ") {
                        Some(_) => {
                            &inner[inner.find('>').unwrap() + 1..inner.find("</a>").unwrap()]
                        }
                        None => inner,
                    };
                    html_unescape(text)
                })
                .collect()
        })
        .collect()
}

fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn rank(verdict: &str) -> u8 {
    match verdict {
        "synthetic" => 0,
        "bona-fide" => 1,
        "no-signal" => 2,
        _ => 3,
    }
}

#[test]
fn review_page_renders_in_chromium_with_every_section() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (model, report, report_rows) = screened(dir.path());
    let flagged = report_rows
        .iter()
        .filter(|r| r["verdict"] == "synthetic")
        .count();
    assert!(
        flagged >= 2,
        "about half the catalog is flagged, got {flagged}"
    );
    let page = dir.path().join("out/review.html");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    let out = run(bin()
        .args(["review", "-b", "cpu", "--top", "3", "--model"])
        .arg(&model)
        .arg(&report)
        .arg("-o")
        .arg(&page));
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: no URL anywhere, audio linked relative to the page.
    assert!(
        !html.contains("http:") && !html.contains("https:") && !html.contains("://"),
        "a URL in the page"
    );
    let audio: Vec<&str> = html.split("<audio ").skip(1).collect();
    assert_eq!(audio.len(), 3);
    for a in &audio {
        let src = a.split("src=\"").nth(1).unwrap().split('"').next().unwrap();
        assert!(
            src.starts_with("../catalog/") && src.contains("#t="),
            "{src}"
        );
    }

    let url = format!("file://{}", page.display());
    let dom = browse(chromium, &url, &["--dump-dom"]);
    assert!(dom.contains("data-render-ms="), "the script ran");
    assert!(
        dom.contains("<svg"),
        "histogram and detail charts are inline SVG"
    );
    assert_eq!(
        dom.matches("<article class=\"file\"").count(),
        3,
        "top 3 flagged in detail"
    );
    assert_eq!(
        dom.matches("data:image/png;base64,").count(),
        3,
        "one spectrogram each"
    );
    let table = table_rows(&dom);
    assert_eq!(table.len(), report_rows.len(), "every row in the table");
    assert!(dom.contains(&format!("data-total=\"{}\"", report_rows.len())));
    // Flagged first, highest score first; then bona fide, no signal, failed.
    let ranks: Vec<u8> = table.iter().map(|r| rank(&r[2])).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "verdict order {ranks:?}"
    );
    let flagged_scores: Vec<f64> = table
        .iter()
        .filter(|r| r[2] == "synthetic")
        .map(|r| r[1].parse().unwrap())
        .collect();
    assert!(
        flagged_scores.windows(2).all(|w| w[0] >= w[1]),
        "{flagged_scores:?}"
    );
    assert_eq!(
        ranks.iter().filter(|&&r| r == 2).count(),
        1,
        "the silent file"
    );
    assert_eq!(
        ranks.iter().filter(|&&r| r == 3).count(),
        1,
        "the broken file"
    );

    // A click on "path" sets #sort=path: the same state from the address.
    let by_path = table_rows(&browse(
        chromium,
        &format!("{url}#sort=path"),
        &["--dump-dom"],
    ));
    let paths: Vec<&String> = by_path.iter().map(|r| &r[0]).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert_eq!(paths.len(), report_rows.len());
    let by_score = table_rows(&browse(
        chromium,
        &format!("{url}#sort=-score"),
        &["--dump-dom"],
    ));
    let scores: Vec<f64> = by_score
        .iter()
        .filter(|r| !r[1].is_empty())
        .map(|r| r[1].parse().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    assert!(
        by_score.last().unwrap()[1].is_empty(),
        "rows without a score last"
    );
    let failed = table_rows(&browse(
        chromium,
        &format!("{url}#verdict=3"),
        &["--dump-dom"],
    ));
    assert_eq!(failed.len(), 1);
    assert!(failed[0][0].ends_with("broken.wav"));
    let filtered = table_rows(&browse(chromium, &format!("{url}#q=%233"), &["--dump-dom"]));
    assert_eq!(filtered.len(), 1, "filter on '#3'");
    assert!(filtered[0][0].ends_with("a tone #3.wav"));

    // A screenshot: a real picture, not a blank page.
    let shot = dir.path().join("shot.png");
    browse(
        chromium,
        &url,
        &[&format!("--screenshot={}", shot.display())],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, 1280);
    let distinct: std::collections::HashSet<&[u8]> =
        buf.chunks(info.color_type.samples()).collect();
    assert!(
        distinct.len() > 200,
        "{} colours: a blank page?",
        distinct.len()
    );
}

/// A model that reads only FFT bins `lo..hi`: 16 kHz, n_fft 256 (62.5 Hz per bin), one 1 s
/// window; logit = mean over frames of the sum of those bins' log power, minus `offset`.
fn band_model(lo: usize, hi: usize, offset: f32) -> model::ModelSpec {
    let bins = 129;
    let config: ModelConfig = serde_json::from_value(json!({
        "format": "deepscreen-model", "version": 1, "id": "one-band",
        "sample_rate": 16000,
        "window": {"seconds": 1.0, "hop_seconds": 1.0, "min_seconds": 0.1},
        "frontend": {"n_fft": 256, "hop_length": 128, "filterbank": {"kind": "bins"}, "log": {"kind": "ln"}},
        "layers": [
            {"type": "conv2d", "name": "band", "out_channels": 1, "kernel": [1, bins]},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "fc", "out_features": 1}
        ],
        "output": {"kind": "logit"}
    }))
    .unwrap();
    let weight: Vec<f32> = (0..bins)
        .map(|k| if (lo..hi).contains(&k) { 0.05 } else { 0.0 })
        .collect();
    let tensors = BTreeMap::from([
        (
            "band.weight".to_string(),
            HostTensor {
                shape: vec![1, 1, 1, bins],
                data: weight,
            },
        ),
        (
            "band.bias".to_string(),
            HostTensor {
                shape: vec![1],
                data: vec![0.0],
            },
        ),
        (
            "fc.weight".to_string(),
            HostTensor {
                shape: vec![1, 1],
                data: vec![1.0],
            },
        ),
        (
            "fc.bias".to_string(),
            HostTensor {
                shape: vec![1],
                data: vec![-offset],
            },
        ),
    ]);
    file::load_bytes(&file::to_bytes(&config, &tensors).unwrap(), "band model").unwrap()
}

#[test]
fn occlusion_map_finds_the_band_the_model_reads() {
    // Reads 2.0–3.0 kHz (bins 32..48); white noise everywhere.
    let spec = band_model(32, 48, -2.0);
    let hz = spec.facts.bin_centres_hz.clone();
    assert_eq!((hz[32], hz[47]), (2000.0, 2937.5));
    let scorer = model::bind(BackendKind::Cpu, spec).unwrap();
    let mut rng = crate::common::rng(9);
    let window = crate::common::random_vec(&mut rng, 16000, -0.1, 0.1);
    let plain = scorer
        .collect(scorer.submit(&[&window], 1).unwrap())
        .unwrap()
        .windows[0];
    let e = scorer.explain(&window, 8).unwrap();
    assert!(
        (e.score - plain).abs() < 1e-6,
        "explain scores like screen: {} vs {plain}",
        e.score
    );
    assert_eq!(
        (e.frames, e.bins),
        (124, 129),
        "(16000 - 256) / 128 + 1 frames"
    );
    assert_eq!(e.bands.len(), 8);
    // 129 bins in 8 bands: band 2 holds bins 32..48, exactly what the model reads.
    assert_eq!(e.bands[2].bins, 32..48);
    assert_eq!(e.bands[2].hz, (2000.0, 2937.5));
    for (k, band) in e.bands.iter().enumerate() {
        if k == 2 {
            assert!(
                e.score - band.score > 0.05,
                "removing the band it reads: {} → {}",
                e.score,
                band.score
            );
        } else {
            assert!(
                (band.score - e.score).abs() < 1e-6,
                "band {k} is not read: {} vs {}",
                band.score,
                e.score
            );
        }
    }
    // The image is the log power spectrum: a 1 kHz tone peaks in bin 16.
    let tone: Vec<f32> = (0..16000)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin())
        .collect();
    let e = scorer.explain(&tone, 4).unwrap();
    let frame = &e.image[60 * e.bins..61 * e.bins];
    let peak = (0..e.bins)
        .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
        .unwrap();
    assert_eq!(peak, 16);
}

#[test]
fn embedded_audio_labels_and_csv_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (model, report, report_rows) = screened(dir.path());
    // A labelled protocol (every other file called spoof).
    let protocol = dir.path().join("protocol.csv");
    let mut text = String::from("path,label\n");
    for (i, r) in report_rows.iter().enumerate() {
        let label = if i % 2 == 0 { "spoof" } else { "bona-fide" };
        text.push_str(&format!("\"{}\",{label}\n", r["path"].as_str().unwrap()));
    }
    std::fs::write(&protocol, text).unwrap();
    let page = dir.path().join("labelled.html");
    let out = run(bin()
        .args([
            "review",
            "-b",
            "cpu",
            "--top",
            "2",
            "--embed-audio",
            "--model",
        ])
        .arg(&model)
        .arg(&report)
        .arg("--protocol")
        .arg(&protocol)
        .arg("-o")
        .arg(&page));
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("miss rate"), "DET curve");
    assert!(html.contains("detection rate"), "ROC curve");
    assert!(html.contains("EER "));
    let wavs: Vec<&str> = html.split("src=\"data:audio/wav;base64,").skip(1).collect();
    assert_eq!(wavs.len(), 2, "one embedded window per detailed file");
    use base64::Engine;
    let b64 = wavs[0].split('"').next().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(reader.spec().sample_rate, 16000);
    assert_eq!(reader.len(), 16000, "the model's 1 s window");

    // The same report as CSV gives the same table.
    let csv_report = dir.path().join("report2.csv");
    let catalog = dir.path().join("catalog");
    let threshold = report_rows[0]["threshold"].as_f64().unwrap().to_string();
    run(bin()
        .args([
            "screen",
            "-b",
            "cpu",
            "--segments",
            "--threshold",
            &threshold,
            "--model",
        ])
        .arg(&model)
        .arg(&catalog)
        .arg("-o")
        .arg(&csv_report));
    let csv_page = dir.path().join("csv.html");
    let out = run(bin()
        .args(["review", "--no-rescreen"])
        .arg(&csv_report)
        .arg("-o")
        .arg(&csv_page));
    assert_eq!(out.status.code(), Some(0));
    let csv_html = std::fs::read_to_string(&csv_page).unwrap();
    // The table's rows, less the link to a detail (only the first page has details).
    let data = |h: &str| -> Vec<Value> {
        let json = h
            .split("<script type=\"application/json\" id=\"rows\">")
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap();
        let rows: Vec<Vec<Value>> = serde_json::from_str(json).unwrap();
        rows.into_iter()
            .map(|r| Value::Array(r[..6].to_vec()))
            .collect()
    };
    assert_eq!(
        data(&html),
        data(&csv_html),
        "JSONL and CSV reports give the same rows"
    );
    assert!(
        csv_html.contains("--no-rescreen"),
        "the page says why there are no details"
    );
}

#[test]
fn review_refuses_what_it_cannot_show() {
    let dir = tempfile::tempdir().unwrap();
    let (_, report, _) = screened(dir.path());
    let page = dir.path().join("p.html");
    // Another model than the report's: its window scores would not match.
    let out = run(bin()
        .args(["review", "-b", "cpu", "--model", "music"])
        .arg(&report)
        .arg("-o")
        .arg(&page));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("review-test"));
    // A model that is not embedded and not given: a page without details, and why.
    let out = run(bin()
        .args(["review", "-b", "cpu"])
        .arg(&report)
        .arg("-o")
        .arg(&page));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        std::fs::read_to_string(&page)
            .unwrap()
            .contains("pass --model FILE")
    );
    // Not a report.
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let out = run(bin().arg("review").arg(&junk).arg("-o").arg(&page));
    assert_eq!(out.status.code(), Some(2));
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(
        run(bin().arg("review").arg(&empty).arg("-o").arg(&page))
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn screen_html_writes_the_page_after_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let catalog = dir.path().join("catalog");
    let n = write_catalog(&catalog);
    let report = dir.path().join("r.jsonl");
    let page = dir.path().join("r.html");
    let out = run(bin()
        .args(["screen", "-b", "cpu", "--threshold", "0.0", "--model"])
        .arg(&model)
        .arg(&catalog)
        .arg("-o")
        .arg(&report)
        .arg("--html")
        .arg(&page));
    assert_eq!(out.status.code(), Some(1), "the broken input");
    let html = std::fs::read_to_string(&page).unwrap();
    // Threshold 0: every scored file is flagged and explained (8 audio files).
    assert_eq!(html.matches("<article class=\"file\"").count(), 8);
    assert!(html.contains(&format!("<dt>files</dt><dd>{n}</dd>")));
    // --html needs -o.
    let out = run(bin()
        .args(["screen", "--model"])
        .arg(&model)
        .arg(&catalog)
        .arg("--html")
        .arg(&page));
    assert_eq!(out.status.code(), Some(2));
}

/// 135,000 rows (the size of one label's takedowns): the page stays small enough to mail and
/// opens at once; its size is asserted, its load time printed (BENCHMARKS.md).
#[test]
fn a_135000_row_report_makes_a_usable_page() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("big.jsonl");
    let mut text = String::with_capacity(135_000 * 300);
    let mut rng = crate::common::rng(1);
    let scores = crate::common::random_vec(&mut rng, 135_000, 0.0, 1.0);
    for (i, s) in scores.iter().enumerate() {
        let row = json!({
            "path": format!("/srv/catalog/artist-{:05}/album-{:02}/track-{:02}.flac", i / 40, (i / 10) % 4, i % 10),
            "score": s * s * s, "verdict": if s * s * s >= 0.8 { "synthetic" } else { "bona-fide" },
            "threshold": 0.8, "max_window_score": s, "mean_window_score": s, "windows": 40,
            "duration_s": 200.0 + (i % 97) as f64, "sample_rate": 44100, "channels": 2,
            "codec": "flac", "container": "flac", "model": "music", "backend": "cuda",
            "error": null, "warnings": []
        });
        text.push_str(&row.to_string());
        text.push('\n');
    }
    std::fs::write(&report, text).unwrap();
    let page = dir.path().join("big.html");
    let out = run(bin()
        .args(["review", "--no-rescreen"])
        .arg(&report)
        .arg("-o")
        .arg(&page));
    assert_eq!(out.status.code(), Some(0));
    let bytes = std::fs::metadata(&page).unwrap().len();
    println!("135,000-row page: {:.1} MB", bytes as f64 / 1e6);
    assert!(bytes < 20_000_000, "{bytes} bytes");
    if let Some(chromium) = chromium() {
        let t = std::time::Instant::now();
        let dom = browse(
            chromium,
            &format!("file://{}", page.display()),
            &["--dump-dom"],
        );
        let ms: String = dom
            .split("data-render-ms=\"")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        println!(
            "135,000-row page: script {ms} ms, headless Chromium load to DOM dump {:.1} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(table_rows(&dom).len(), 100, "one page of 100 rows rendered");
        assert!(dom.contains("data-total=\"135000\""));
    }
}
