//! Command-line definitions (clap) and the commands' drivers.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use deepscreen::backend::{self, BackendKind};
use deepscreen::model;
use deepscreen::screen::inputs::{self, Input};
use deepscreen::screen::pipeline::{self, ScreenOptions};
use deepscreen::screen::report::{Format, ReportWriter};

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

    /// Model: an embedded model's name or a .safetensors model file.
    #[arg(short, long, value_name = "NAME|FILE")]
    pub model: Option<String>,

    /// Compute backend; auto picks the first available of cuda, wgpu, cpu.
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

    /// Write rows to FILE instead of standard output (the file is replaced).
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
        Command::Devices { json } => devices(json).map(|_| EXIT_OK),
    };
    match result {
        Ok(code) => ExitCode::from(code),
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

    let Some(model_arg) = args.model.as_deref() else {
        bail!(
            "no model given: pass --model FILE.safetensors (this build embeds no models yet; \
             see README \"Quick start\" for a demo model)"
        );
    };
    let spec = model::resolve(model_arg)?;
    let threshold = args.threshold.unwrap_or(spec.config.threshold);
    let scorer = model::bind(args.backend, spec)?;

    let mut paths = args.paths.clone();
    if let Some(list) = &args.files_from {
        inputs::read_list(list, &mut paths)?;
    }
    if paths.is_empty() {
        bail!("nothing to screen: give files or directories, or --files-from FILE|-");
    }
    let mut found: Vec<Input> = Vec::new();
    inputs::expand(&paths, &mut found);
    if found.is_empty() {
        bail!("nothing to screen: no audio files found in the given paths");
    }

    let sink: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut writer = ReportWriter::new(sink, args.format).context("cannot write the report")?;

    let progress = if !args.no_progress && std::io::stderr().is_terminal() {
        let bar =
            ProgressBar::with_draw_target(Some(found.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files  {elapsed_precise}  eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
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
    };
    let report_name = args
        .output
        .clone()
        .unwrap_or_else(|| "<standard output>".into());
    let mut failed = 0usize;
    let summary = pipeline::run(&found, scorer.as_ref(), &opts, &mut |row| {
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
    eprintln!(
        "deepscreen: {} files screened ({} failed, {} flagged synthetic at threshold {threshold}), \
         {} of audio in {} = {:.0}x real time, model {}, backend {}",
        summary.files,
        summary.failed,
        summary.flagged,
        human_duration(summary.audio_seconds),
        human_duration(summary.elapsed.as_secs_f64()),
        summary.realtime_factor(),
        scorer.spec().config.id,
        scorer.backend_name(),
    );
    Ok(if summary.failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_OK
    })
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
