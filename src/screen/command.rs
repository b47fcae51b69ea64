//! `deepscreen screen` as a library call: bind the model, open (or resume) the report, stream
//! the inputs through the shard and resume filters into the pipeline, and print the summary.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::pipeline::{self, ScreenOptions, Summary};
use super::report::{Format, ReportWriter};
use super::shard::Shard;
use super::{inputs, journal};
use crate::backend::BackendKind;
use crate::model;

/// What to screen and how (the `screen` command's options).
#[derive(Debug, Clone)]
pub struct ScreenJob {
    /// Audio files or directories.
    pub paths: Vec<PathBuf>,
    /// Also read paths, one per line, from this file ("-" for standard input).
    pub files_from: Option<String>,
    /// Embedded model name or model file.
    pub model: String,
    pub backend: BackendKind,
    /// Windows per backend call.
    pub batch: usize,
    /// Decode and CPU compute threads [default: all cores].
    pub threads: Option<usize>,
    pub format: Format,
    /// The report file [default: standard output].
    pub output: Option<PathBuf>,
    /// Decision threshold [default: the model's].
    pub threshold: Option<f32>,
    /// Include per-window scores in each row.
    pub segments: bool,
    /// Draw a progress bar when standard error is a terminal.
    pub progress: bool,
    /// Continue the report in `output` instead of replacing it.
    pub resume: bool,
    /// Screen only this shard [default: from the Slurm or Kubernetes environment].
    pub shard: Option<Shard>,
    /// Write rows in input order.
    pub ordered: bool,
}

/// Screen `job`'s inputs into its report and print the summary line on standard error.
/// Files that fail get an error row and are counted in the summary; an error here means
/// nothing usable was produced (no inputs, bad model or backend, unwritable report).
pub fn run(job: &ScreenJob) -> anyhow::Result<Summary> {
    let threads = job
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // Ignore the error if a pool already exists (only possible when embedded in tests).
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();

    if job.paths.is_empty() && job.files_from.is_none() {
        bail!("nothing to screen: give files or directories, or --files-from FILE|-");
    }
    if job.resume && job.output.is_none() {
        bail!("--resume needs -o FILE: the report to continue");
    }
    let shard = match job.shard {
        Some(s) => Some(s),
        None => Shard::from_env()?,
    };
    let spec = model::resolve(&job.model)?;
    let threshold = job.threshold.unwrap_or(spec.config.threshold);
    let scorer = model::bind(job.backend, spec)?;

    // The report: replaced, or (--resume) repaired and appended to.
    let mut done = HashSet::new();
    let mut writer = match &job.output {
        Some(path) => {
            let mut header = true;
            if job.resume {
                let resumed = journal::resume(path, job.format)?;
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
            let file = journal::DurableFile::open(path, job.resume)
                .with_context(|| format!("cannot create output file {}", path.display()))?;
            ReportWriter::new(Box::new(std::io::BufWriter::new(file)), job.format, header)
        }
        None => ReportWriter::new(
            Box::new(std::io::BufWriter::new(std::io::stdout())),
            job.format,
            true,
        ),
    }
    .context("cannot write the report")?;

    // Inputs stream through the shard and resume filters; counts say what was skipped.
    let seen = Arc::new(AtomicUsize::new(0));
    let skipped_done = Arc::new(AtomicUsize::new(0));
    let (seen_c, skipped_c) = (seen.clone(), skipped_done.clone());
    let inputs: inputs::Inputs = Box::new(
        inputs::stream(job.paths.clone(), job.files_from.as_deref())?
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

    let progress = progress_bar(job.progress);
    let opts = ScreenOptions {
        batch: job.batch,
        decoders: threads,
        threshold,
        segments: job.segments,
        ordered: job.ordered,
    };
    let report_name = job
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
        writer.write(&row).map_err(|source| crate::Error::Io {
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
    if summary.no_signal > 0 {
        notes.push(format!(
            "{} with no active signal (verdict no-signal)",
            summary.no_signal
        ));
    }
    let skipped = skipped_done.load(Ordering::Relaxed);
    if skipped > 0 {
        notes.push(format!("{skipped} already in the report, skipped"));
    }
    if let Some(mib) = super::peak_rss_mib() {
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
    Ok(summary)
}

/// A spinner with the file count, only when asked for and standard error is a terminal.
fn progress_bar(wanted: bool) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} files  {elapsed_precise}  {per_sec}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar
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
