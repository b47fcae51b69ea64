//! Command-line definitions (clap) and the commands' drivers.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use deepscreen::backend::{self, BackendKind};
use deepscreen::eval::protocol::ProtocolFormat;
use deepscreen::model;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deepscreen::screen::inputs;
use deepscreen::screen::pipeline::{self, ScreenOptions};
use deepscreen::screen::report::{Format, ReportWriter};
use deepscreen::screen::shard::Shard;
use deepscreen::screen::{journal, merge};

/// Exit code: every file was screened.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run finished but at least one file could not be screened (see its row).
pub const EXIT_SOME_FAILED: u8 = 1;
/// Exit code: nothing usable was produced (bad arguments, model, backend, or output).
pub const EXIT_FATAL: u8 = 2;

macro_rules! exit_codes {
    () => {
        "Exit codes:
  0  every input was screened (whatever the verdicts)
  1  the run finished, but some inputs failed; their rows carry an `error`
  2  fatal: bad arguments, unusable model or backend, or the report could not be written"
    };
}

#[derive(Parser)]
#[command(
    name = "deepscreen",
    version,
    about = "Screen audio catalogs for AI-generated (synthetic) speech and music.",
    long_about = "Screen audio catalogs for AI-generated (synthetic) speech and music.\n\n\
        Each file is decoded, resampled to the model's rate, cut into fixed windows, and scored \
        by a spectrogram classifier on the CPU or a GPU. You get one row per file: a calibrated \
        probability that the audio is synthetic, a verdict, and (with --segments) which windows \
        look synthetic.",
    after_help = exit_codes!()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Score audio files and write one row per file (JSON Lines or CSV).
    #[command(after_long_help = SCREEN_EXAMPLES)]
    Screen(ScreenArgs),
    /// Combine shard reports into one, checking for duplicate rows and (with --expect) gaps.
    Merge(MergeArgs),
    /// Score a labelled protocol and report EER, minDCF and ROC AUC, pooled and per attack.
    Eval(EvalArgs),
    /// Time the backends: on one synthetic batch (front-end, classifier, whole forward, whole
    /// forward with the next batch queued, and the score difference from the CPU backend), or
    /// end to end on a catalog (--catalog).
    Bench(BenchArgs),
    /// List the compute backends, whether each can run here, and why not.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

const SCREEN_EXAMPLES: &str = concat!(
    "Examples:
  deepscreen screen ~/catalog --model speech.safetensors -o results.jsonl
  find /data -name '*.flac' | deepscreen screen --files-from - --model m.safetensors --format csv
  deepscreen screen song.mp3 --model m.safetensors --segments
  deepscreen screen --files-from all.txt --model m.safetensors --shard 3/16 --resume -o part3.jsonl

Directories are walked recursively (symbolic links followed, loops reported, not followed) and
files with an audio extension are picked up: wav flac mp3 ogg oga m4a mp4 m4b aac alac caf aif
aiff aifc mka mkv webm. Files named on the command line or in --files-from are screened whatever
their extension.

Each row holds: path, score (calibrated probability the audio is synthetic), verdict
(\"synthetic\" when score >= threshold, else \"bona-fide\"), max_window_score, mean_window_score,
windows, duration_s, sample_rate, channels, codec, container, model, backend, error, warnings,
and with --segments the per-window scores. A file that cannot be read gets a row with `error`
set; the run goes on.

",
    exit_codes!()
);

#[derive(Args)]
pub struct ScreenArgs {
    /// Audio files or directories to screen.
    pub paths: Vec<PathBuf>,

    /// Also read paths, one per line, from FILE ('-' for standard input).
    #[arg(long, value_name = "FILE|-")]
    pub files_from: Option<String>,

    /// Model: an embedded model (music: songs and instrumentals, 44.1 kHz; speech: voices,
    /// 16 kHz) or a .safetensors model file.
    #[arg(short, long, value_name = "NAME|FILE", default_value = model::DEFAULT_MODEL)]
    pub model: String,

    /// Compute backend; auto picks cuda, else wgpu on a hardware GPU, else cpu.
    #[arg(short, long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,

    /// Windows scored per backend call.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch: u32,

    /// Worker threads for decoding and CPU compute [default: all cores].
    #[arg(short = 'j', long)]
    pub threads: Option<usize>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,

    /// Write rows to FILE instead of standard output (the file is replaced, or continued with
    /// --resume).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Score at or above which a file is called synthetic [default: the model's].
    #[arg(short, long, value_parser = parse_probability)]
    pub threshold: Option<f32>,

    /// Include per-window scores (start_s, end_s, score) in each row.
    #[arg(long)]
    pub segments: bool,

    /// Never draw a progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,

    /// Continue an interrupted run: keep the rows already in -o FILE (a torn last row is cut),
    /// skip their inputs, append the rest.
    #[arg(long)]
    pub resume: bool,

    /// Screen only shard I of N (0-based): inputs whose path hashes to I mod N. Defaults to the
    /// Slurm array task (SLURM_ARRAY_TASK_ID/COUNT) or the Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX with DEEPSCREEN_SHARD_COUNT) when those are set.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,

    /// Write rows in input order instead of completion order.
    #[arg(long)]
    pub ordered: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Time the whole pipeline (decode, resample, windows, scoring) on the audio files of DIR
    /// (walked like `screen`) per backend and thread count, and decoding alone. Without it, one
    /// synthetic batch is timed per backend.
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,

    /// Model: an embedded model's name or a .safetensors file [default: both embedded models
    /// synthetic; the music model with --catalog].
    #[arg(short, long, value_name = "NAME|FILE")]
    pub model: Option<String>,

    /// Timed repetitions per stage in the synthetic mode (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,

    /// Backends to time, comma-separated [default: cpu, plus wgpu on a hardware GPU and cuda
    /// where available]. Those that cannot start are reported and skipped.
    #[arg(short, long, value_enum, value_delimiter = ',')]
    pub backends: Vec<BackendKind>,

    /// Thread counts to time, comma-separated [default: 1 and all cores].
    #[arg(short = 'j', long, value_delimiter = ',')]
    pub threads: Vec<usize>,

    /// Windows per backend call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Protocol file: In-the-Wild meta.csv, an ASVspoof 2019 LA protocol, or a CSV with
    /// path/label[/attack] columns.
    pub protocol: PathBuf,

    /// Protocol format.
    #[arg(long, value_enum, default_value_t = ProtocolFormat::Auto)]
    pub format: ProtocolFormat,

    /// Directory the protocol's audio paths are relative to [default: the protocol's directory;
    /// ASVspoof: where UTT.flac lives].
    #[arg(long, value_name = "DIR")]
    pub audio_dir: Option<PathBuf>,

    /// Model: an embedded model (music, speech) or a .safetensors model file.
    #[arg(short, long, value_name = "NAME|FILE", default_value = model::DEFAULT_MODEL)]
    pub model: String,

    /// Compute backend.
    #[arg(short, long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,

    /// Windows scored per backend call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,

    /// Write an ASVspoof-style score file (ID ATTACK KEY SCORE, higher = more bona fide).
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,

    /// Draw the pooled ROC curve to FILE (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Reports to combine (all JSON Lines, or all CSV).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,

    /// Write the merged report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Format of the reports [default: csv if every file ends in .csv, else jsonl].
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,

    /// The catalog's path list (one per line, as given to --files-from): report inputs with
    /// no row.
    #[arg(long, value_name = "LIST")]
    pub expect: Option<PathBuf>,
}

fn parse_probability(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside [0, 1]"))
    }
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Screen(args) => screen(args),
        Command::Merge(args) => merge(args),
        Command::Eval(args) => eval(args),
        Command::Bench(args) => bench(args),
        Command::Devices { json } => devices(json).map(|_| EXIT_OK),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`deepscreen devices | head`): stop quietly, like other tools.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("deepscreen: error: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

fn devices(json: bool) -> anyhow::Result<()> {
    let statuses = backend::probe_all();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &statuses)?;
        writeln!(out)?;
    } else {
        for s in statuses {
            let state = if s.available {
                "available"
            } else {
                "unavailable"
            };
            writeln!(out, "{:<5} {:<11} {}", s.backend, state, s.detail)?;
        }
    }
    Ok(())
}

fn screen(args: ScreenArgs) -> anyhow::Result<u8> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // Ignore the error if a pool already exists (only possible when embedded in tests).
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();

    let model_arg = args.model.as_str();
    if args.paths.is_empty() && args.files_from.is_none() {
        bail!("nothing to screen: give files or directories, or --files-from FILE|-");
    }
    if args.resume && args.output.is_none() {
        bail!("--resume needs -o FILE: the report to continue");
    }
    let shard = match args.shard {
        Some(s) => Some(s),
        None => Shard::from_env()?,
    };
    let spec = model::resolve(model_arg)?;
    let threshold = args.threshold.unwrap_or(spec.config.threshold);
    let scorer = model::bind(args.backend, spec)?;

    // The report: replaced, or (--resume) repaired and appended to.
    let mut done = HashSet::new();
    let mut writer = match &args.output {
        Some(path) => {
            let mut header = true;
            if args.resume {
                let resumed = journal::resume(path, args.format)?;
                if resumed.repaired_bytes > 0 {
                    eprintln!(
                        "deepscreen: {}: cut a torn last row ({} bytes) left by an interrupted run",
                        path.display(),
                        resumed.repaired_bytes
                    );
                }
                header = !resumed.has_content;
                done = resumed.done;
            }
            let file = journal::DurableFile::open(path, args.resume)
                .with_context(|| format!("cannot create output file {}", path.display()))?;
            ReportWriter::new(Box::new(std::io::BufWriter::new(file)), args.format, header)
        }
        None => ReportWriter::new(
            Box::new(std::io::BufWriter::new(std::io::stdout())),
            args.format,
            true,
        ),
    }
    .context("cannot write the report")?;

    // Inputs stream through the shard and resume filters; counts say what was skipped.
    let seen = Arc::new(AtomicUsize::new(0));
    let skipped_done = Arc::new(AtomicUsize::new(0));
    let (seen_c, skipped_c) = (seen.clone(), skipped_done.clone());
    let inputs: inputs::Inputs = Box::new(
        inputs::stream(args.paths.clone(), args.files_from.as_deref())?
            .inspect(move |_| {
                seen_c.fetch_add(1, Ordering::Relaxed);
            })
            .filter(move |input| shard.is_none_or(|s| s.contains(input.path())))
            .filter(move |input| {
                let finished = done.contains(input.path().to_string_lossy().as_ref());
                if finished {
                    skipped_c.fetch_add(1, Ordering::Relaxed);
                }
                !finished
            }),
    );

    let progress = if !args.no_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {pos} files  {elapsed_precise}  {per_sec}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let opts = ScreenOptions {
        batch: args.batch as usize,
        decoders: threads,
        threshold,
        segments: args.segments,
        ordered: args.ordered,
    };
    let report_name = args
        .output
        .clone()
        .unwrap_or_else(|| "<standard output>".into());
    let mut failed = 0usize;
    let summary = pipeline::run(inputs, scorer.as_ref(), &opts, &mut |row| {
        if row.error.is_some() {
            failed += 1;
            progress.set_message(format!("{failed} failed"));
        }
        progress.inc(1);
        writer.write(&row).map_err(|source| deepscreen::Error::Io {
            path: report_name.clone(),
            source,
        })
    })?;
    progress.finish_and_clear();
    let seen = seen.load(Ordering::Relaxed);
    if seen == 0 {
        bail!("nothing to screen: no audio files found in the given paths");
    }
    let mut notes = Vec::new();
    if let Some(s) = shard {
        notes.push(format!(
            "shard {s}: {} of {seen} inputs",
            summary.files + skipped_done.load(Ordering::Relaxed)
        ));
    }
    let skipped = skipped_done.load(Ordering::Relaxed);
    if skipped > 0 {
        notes.push(format!("{skipped} already in the report, skipped"));
    }
    if let Some(mib) = peak_rss_mib() {
        notes.push(format!("peak RSS {mib} MiB"));
    }
    eprintln!(
        "deepscreen: {} files screened ({} failed, {} flagged synthetic at threshold {threshold}), \
         {} of audio in {} = {:.0}x real time, model {}, backend {}{}",
        summary.files,
        summary.failed,
        summary.flagged,
        human_duration(summary.audio_seconds),
        human_duration(summary.elapsed.as_secs_f64()),
        summary.realtime_factor(),
        scorer.spec().config.id,
        scorer.backend_name(),
        notes.iter().map(|n| format!("; {n}")).collect::<String>(),
    );
    Ok(if summary.failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_OK
    })
}

/// Backends to time: those asked for, or cpu plus every GPU backend that `auto` would use.
fn bench_backends(asked: &[BackendKind]) -> Vec<BackendKind> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let mut v = vec![BackendKind::Cpu];
    if backend::wgpu::preferred_by_auto() {
        v.push(BackendKind::Wgpu);
    }
    if backend::cuda::status().0 {
        v.push(BackendKind::Cuda);
    }
    v
}

fn bench(args: BenchArgs) -> anyhow::Result<u8> {
    match args.catalog.clone() {
        Some(dir) => bench_catalog(&args, dir),
        None => bench_synthetic(&args),
    }
}

fn bench_synthetic(args: &BenchArgs) -> anyhow::Result<u8> {
    use deepscreen::backend::timing::{StageTimes, synthetic_windows, time_stages};
    let specs = match &args.model {
        Some(m) => vec![model::resolve(m)?],
        None => model::EMBEDDED
            .iter()
            .map(|(name, _)| model::resolve(name))
            .collect::<deepscreen::Result<Vec<_>>>()?,
    };
    let batch = args.batch.max(1);
    println!(
        "one batch of {batch} synthetic windows, median of {} runs (each ends with a readback)",
        args.repeats
    );
    println!(
        "{:<20} {:<8} {:>12} {:>14} {:>12} {:>11} {:>11} {:>11} {:>14}",
        "model",
        "backend",
        "frontend ms",
        "classifier ms",
        "forward ms",
        "queued ms",
        "windows/s",
        "x realtime",
        "max |d| vs cpu"
    );
    for spec in specs {
        let windows = synthetic_windows(batch, spec.window_samples);
        let hop = spec.config.window.hop_seconds;
        let mut cpu_scores: Option<Vec<f32>> = None;
        for kind in bench_backends(&args.backends) {
            let run = |spec| -> deepscreen::Result<StageTimes> {
                match kind {
                    BackendKind::Wgpu => time_stages(
                        &backend::wgpu::WgpuBackend::new()?,
                        spec,
                        &windows,
                        batch,
                        args.repeats,
                    ),
                    BackendKind::Cuda => time_stages(
                        &backend::cuda::CudaBackend::new()?,
                        spec,
                        &windows,
                        batch,
                        args.repeats,
                    ),
                    _ => time_stages(
                        &backend::cpu::CpuBackend::new(),
                        spec,
                        &windows,
                        batch,
                        args.repeats,
                    ),
                }
            };
            let t = match run(spec.clone()) {
                Ok(t) => t,
                Err(e) => {
                    println!("{:<20} {:<8} unavailable: {e}", spec.config.id, kind.name());
                    continue;
                }
            };
            if kind == BackendKind::Cpu {
                cpu_scores = Some(t.scores.clone());
            }
            let diff = cpu_scores.as_ref().map_or("-".to_string(), |c| {
                let d = c
                    .iter()
                    .zip(&t.scores)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                format!("{d:.2e}")
            });
            let per_s = batch as f64 / t.forward.as_secs_f64();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            println!(
                "{:<20} {:<8} {:>12.2} {:>14.2} {:>12.2} {:>11.2} {:>11.1} {:>11.0} {:>14}",
                spec.config.id,
                kind.name(),
                ms(t.frontend),
                ms(t.classifier),
                ms(t.forward),
                ms(t.queued),
                per_s,
                per_s * hop,
                diff
            );
        }
    }
    Ok(EXIT_OK)
}

fn bench_catalog(args: &BenchArgs, catalog: PathBuf) -> anyhow::Result<u8> {
    let model_arg = args.model.as_deref().unwrap_or(model::DEFAULT_MODEL);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = args.threads.clone();
    if threads.is_empty() {
        threads = vec![1, cores];
        threads.dedup();
    }
    let spec = model::resolve(model_arg)?;
    let list = || inputs::stream(vec![catalog.clone()], None);
    let files = list()?.count();
    if files == 0 {
        bail!("no audio files under {}", catalog.display());
    }
    println!(
        "catalog {} ({files} files), model {}, batch {}, {cores} cores",
        catalog.display(),
        spec.config.id,
        args.batch
    );
    println!(
        "{:<8} {:>7} {:>9} {:>10} {:>11} {:>12} {:>13}",
        "backend", "threads", "files/s", "x realtime", "wall s", "decode cpu-s", "device s"
    );
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build()?;
        let d =
            pool.install(|| pipeline::decode_only(list().expect("listed above"), &spec, t.max(1)));
        println!(
            "{:<8} {:>7} {:>9.1} {:>10.0} {:>11.2} {:>12.2} {:>13}",
            "decode",
            t,
            d.files as f64 / d.elapsed.as_secs_f64(),
            d.realtime_factor(),
            d.elapsed.as_secs_f64(),
            d.decode_time.as_secs_f64(),
            "-"
        );
    }
    for kind in bench_backends(&args.backends) {
        let scorer = match model::bind(kind, spec.clone()) {
            Ok(s) => s,
            Err(e) => {
                println!("{:<8} unavailable: {e}", kind.name());
                continue;
            }
        };
        for &t in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t.max(1))
                .build()?;
            let opts = ScreenOptions {
                batch: args.batch.max(1),
                decoders: t.max(1),
                threshold: 0.5,
                segments: false,
                ordered: false,
            };
            let summary = pool.install(|| {
                pipeline::run(
                    list().expect("listed above"),
                    scorer.as_ref(),
                    &opts,
                    &mut |_| Ok(()),
                )
            })?;
            println!(
                "{:<8} {:>7} {:>9.1} {:>10.0} {:>11.2} {:>12.2} {:>13.2}",
                scorer.backend_name(),
                t,
                summary.files as f64 / summary.elapsed.as_secs_f64(),
                summary.realtime_factor(),
                summary.elapsed.as_secs_f64(),
                summary.decode_time.as_secs_f64(),
                summary.device_time.as_secs_f64(),
            );
        }
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS {mib} MiB");
    }
    Ok(EXIT_OK)
}

/// Peak resident memory of this process (Linux: VmHWM), for the summary line.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn eval(args: EvalArgs) -> anyhow::Result<u8> {
    use deepscreen::eval;
    let trials = eval::protocol::read(&args.protocol, args.format, args.audio_dir.as_deref())?;
    if trials.is_empty() {
        bail!("{}: no trials", args.protocol.display());
    }
    let spec = model::resolve(&args.model)?;
    let scorer = model::bind(args.backend, spec)?;
    let opts = ScreenOptions {
        batch: args.batch.max(1),
        decoders: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threshold: scorer.spec().config.threshold,
        segments: false,
        ordered: true,
    };
    let inputs: inputs::Inputs = Box::new(
        trials
            .iter()
            .map(|t| inputs::Input::File(t.path.clone()))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    let mut scores = Vec::with_capacity(trials.len());
    pipeline::run(inputs, scorer.as_ref(), &opts, &mut |row| {
        if let Some(e) = &row.error {
            eprintln!("deepscreen: {}: {e}", row.path);
        }
        scores.push(row.score.map(f64::from));
        Ok(())
    })?;
    let report = eval::report(&trials, &scores)?;
    if let Some(path) = &args.scores {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        eval::write_scores(&mut f, &trials, &scores)?;
        f.flush()?;
    }
    if let Some(path) = &args.plot {
        let (bona, spoof): (Vec<_>, Vec<_>) = trials
            .iter()
            .zip(&scores)
            .filter_map(|(t, s)| s.map(|s| (t.spoof, s)))
            .partition(|(spoof, _)| !spoof);
        let strip = |v: Vec<(bool, f64)>| v.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
        let title = format!("{} on {}", scorer.spec().config.id, args.protocol.display());
        eval::plot_roc(path, &strip(bona), &strip(spoof), &title)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<16} {:>7} {:>7} {:>8} {:>8} {:>8}",
            "attack", "bona", "spoof", "EER %", "minDCF", "AUC"
        );
        let line = |name: &str, m: &eval::Metrics| {
            println!(
                "{:<16} {:>7} {:>7} {:>8.2} {:>8.4} {:>8.4}",
                name,
                m.bona_fide,
                m.spoof,
                100.0 * m.eer,
                m.min_dcf,
                m.roc_auc
            )
        };
        for (attack, m) in &report.per_attack {
            line(attack, m);
        }
        line("pooled", &report.pooled);
        if report.failed > 0 {
            println!(
                "{} trials could not be scored and are excluded",
                report.failed
            );
        }
    }
    Ok(if report.failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_OK
    })
}

fn merge(args: MergeArgs) -> anyhow::Result<u8> {
    let format = args.format.unwrap_or_else(|| {
        if args
            .reports
            .iter()
            .all(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
        {
            Format::Csv
        } else {
            Format::Jsonl
        }
    });
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let report = merge::merge(&args.reports, format, &mut out, args.expect.as_deref())?;
    drop(out);
    for p in report.duplicates.iter().take(20) {
        eprintln!("deepscreen: duplicate row for {p} (kept the first)");
    }
    for p in report.missing.iter().take(20) {
        eprintln!("deepscreen: no row for {p}");
    }
    eprintln!(
        "deepscreen: merged {} reports: {} rows, {} duplicates, {} missing{}",
        args.reports.len(),
        report.rows,
        report.duplicates.len(),
        report.missing.len(),
        if args.expect.is_none() {
            " (pass --expect LIST to check for gaps)"
        } else {
            ""
        }
    );
    Ok(
        if report.duplicates.is_empty() && report.missing.is_empty() {
            EXIT_OK
        } else {
            EXIT_SOME_FAILED
        },
    )
}

/// "42.0 s", "12.5 min", "3.20 h".
fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}
