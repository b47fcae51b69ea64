//! `deepscreen screen` as a library call: bind the model, open (or resume) the report, stream
//! the inputs through the shard and resume filters into the pipeline, and print the summary.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use signal_hook::consts::{SIGINT, SIGTERM};

use super::pipeline::{self, ScreenOptions, Summary};
use super::shard::Shard;
use super::vocals::VocalChoice;
use super::{inputs, journal};
use crate::backend::BackendKind;
use crate::model;
use crate::model::config::SegmentRule;
use crate::report::{Format, ReportWriter, path_bytes};
use crate::text::count;

/// What to screen and how (the `screen` command's options).
#[derive(Debug, Clone)]
pub struct ScreenJob {
    /// Audio files or directories.
    pub paths: Vec<PathBuf>,
    /// Also read paths, one per line, from this file ("-" for standard input).
    pub files_from: Option<String>,
    /// Embedded model name or model file.
    pub model: String,
    /// A fused model's cascade off: every member scores every window.
    pub exact: bool,
    pub backend: BackendKind,
    /// Windows per backend call [default: `pipeline::DEFAULT_BATCH`].
    pub batch: Option<usize>,
    /// Decode and CPU compute threads [default: all cores].
    pub threads: Option<usize>,
    pub format: Format,
    /// The report file [default: standard output].
    pub output: Option<PathBuf>,
    /// Decision threshold [default: the model's].
    pub threshold: Option<f32>,
    /// The segment rule's threshold [default: the model's rule, where it has one].
    pub segment_threshold: Option<SegmentThreshold>,
    /// Include per-window scores in each row.
    pub segments: bool,
    /// Draw a progress bar when standard error is a terminal.
    pub progress: bool,
    /// Continue the report in `output` instead of replacing it.
    pub resume: bool,
    /// Replace a report already in `output` (otherwise a non-empty one is refused).
    pub force: bool,
    /// With `resume`: screen the inputs of error rows again (their old rows are dropped).
    pub retry_failed: bool,
    /// Screen only this shard [default: from the Slurm or Kubernetes environment].
    pub shard: Option<Shard>,
    /// Write rows in input order.
    pub ordered: bool,
    /// Voices inside music: the vocal stage on, off, or by model, and its options.
    pub vocals: VocalChoice,
}

/// `--segment-threshold`: the model's segment rule at another threshold, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SegmentThreshold {
    Off,
    At(f32),
}

/// The segment rule a run applies: the model's, unless `choice` moves or disables it.
pub fn segment_rule(
    model: &crate::model::DetectorInfo,
    choice: Option<SegmentThreshold>,
) -> anyhow::Result<Option<SegmentRule>> {
    Ok(match (choice, &model.segment_rule) {
        (None, rule) => rule.clone(),
        (Some(SegmentThreshold::Off), _) => None,
        (Some(SegmentThreshold::At(threshold)), Some(rule)) => Some(SegmentRule {
            threshold,
            ..rule.clone()
        }),
        (Some(SegmentThreshold::At(_)), None) => bail!(
            "--segment-threshold: model {} has no segment rule (it decides by the file score \
             alone)",
            model.id
        ),
    })
}

/// How a `screen` run ended.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    /// Error rows kept from the report being resumed: they count towards the exit code, which
    /// speaks for the whole report.
    pub failed_before: usize,
    /// The signal (SIGINT or SIGTERM) that stopped the run before its inputs ran out.
    pub stopped_by: Option<i32>,
}

/// Screen `job`'s inputs into its report and print the summary line on standard error.
/// Files that fail get an error row and are counted in the summary; an error here means
/// nothing usable was produced (no inputs, bad model or backend, unwritable report).
/// SIGINT or SIGTERM (Ctrl-C, Slurm's time limit or preemption) stops the run within moments:
/// no new input is started, the files in flight are dropped without a row, every finished file
/// is written, and the report can be continued with `--resume`; a second signal ends the
/// process at once.
pub fn run(job: &ScreenJob) -> anyhow::Result<Outcome> {
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
    if job.retry_failed && !job.resume {
        bail!("--retry-failed goes with --resume -o FILE: it re-screens that report's error rows");
    }
    if job.force && job.resume {
        bail!("--force replaces the report and --resume continues it: give one of them");
    }
    let shard = match job.shard {
        Some(s) => Some(s),
        None => Shard::from_env()?,
    };
    if let Some(out) = &job.output
        && let Some(input) = job.paths.iter().find(|p| inputs::same_file(p, out))
    {
        bail!(
            "-o {} is also an input ({}): the report would overwrite it",
            out.display(),
            input.display()
        );
    }
    // A list that cannot be read fails here, before the report is touched.
    let listed = inputs::stream(job.paths.clone(), job.files_from.as_deref())?;
    let scorer = model::open(&job.model, job.backend, job.exact)?;
    let threshold = job.threshold.unwrap_or(scorer.info().threshold);
    let segment_rule = segment_rule(scorer.info(), job.segment_threshold)?;
    let vocals = job
        .vocals
        .open(scorer.info().sample_rate, job.backend)?
        .map(|stage| pipeline::Vocals(Arc::from(stage)));
    let spec_id = scorer.info().id.clone();
    let batch = pipeline::chosen_batch(job.batch, scorer.as_ref())?;

    // The report: locked, then replaced, or (--resume) checked, repaired and appended to.
    let mut done = HashSet::new();
    let mut failed_before = 0;
    let mut replacement = None;
    let mut writer = match &job.output {
        Some(path) => {
            let existing = if job.resume {
                journal::Existing::Append
            } else if job.force {
                journal::Existing::Replace
            } else {
                journal::Existing::Refuse
            };
            let open =
                || journal::DurableFile::open(path, existing).context("cannot create output file");
            let (mut file, staged) = open()?;
            replacement = staged;
            let mut header = true;
            if job.resume {
                if !file.is_regular() {
                    bail!(
                        "--resume needs a regular file: {} is a pipe or a device",
                        path.display()
                    );
                }
                let expected = journal::Expected {
                    format: job.format,
                    model: &spec_id,
                    threshold,
                    segment_threshold: segment_rule.as_ref().map(|r| r.threshold),
                    vocal_threshold: vocals.as_ref().map(|v| v.0.settings().threshold),
                };
                let resumed = journal::resume(path, expected, job.retry_failed)?;
                if resumed.repaired_bytes > 0 {
                    eprintln!(
                        "deepscreen: {}: cut a torn last row ({} bytes) left by an interrupted run",
                        path.display(),
                        resumed.repaired_bytes
                    );
                }
                if resumed.retried > 0 {
                    eprintln!(
                        "deepscreen: {}: dropped {} error rows, screening those inputs again",
                        path.display(),
                        resumed.retried
                    );
                    // The report was rewritten (a new file): lock and append to that one.
                    drop(file);
                    file = open()?.0;
                }
                header = !resumed.has_content;
                done = resumed.done;
                failed_before = resumed.failed;
            }
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
    let repeated = Arc::new(AtomicUsize::new(0));
    let (paths, files_from) = (job.paths.clone(), job.files_from.clone());
    let progress = progress_bar(job.progress, move || {
        inputs::count(paths, files_from.as_deref(), shard)
    });
    let (seen_c, skipped_c, repeated_c) = (seen.clone(), skipped_done.clone(), repeated.clone());
    let (progress_c, progress_r) = (progress.clone(), progress.clone());
    // A path listed twice is screened once (16 bytes per distinct input: ~30 MB per million).
    let mut distinct = HashSet::new();
    let stop = StopSignal::install(progress.clone())?;
    let inputs: inputs::Inputs = Box::new(
        listed
            .inspect(move |_| {
                seen_c.fetch_add(1, Ordering::Relaxed);
            })
            .filter(move |input| {
                let new = distinct.insert(xxhash_rust::xxh3::xxh3_128(&path_bytes(input.path())));
                if !new {
                    repeated_c.fetch_add(1, Ordering::Relaxed);
                    progress_r.inc(1);
                }
                new
            })
            .filter(move |input| shard.is_none_or(|s| s.contains(input.path())))
            .filter(move |input| {
                let finished = done.contains(path_bytes(input.path()).as_ref());
                if finished {
                    skipped_c.fetch_add(1, Ordering::Relaxed);
                    // Counted towards the total, so the bar still ends full.
                    progress_c.inc(1);
                }
                !finished
            }),
    );

    let opts = ScreenOptions {
        batch,
        decoders: threads,
        threshold,
        segment_rule: segment_rule.clone(),
        segments: job.segments,
        ordered: job.ordered,
        stop: Some(stop.flag()),
        decoding: Some(stop.decoding()),
        vocals: vocals.clone(),
    };
    let report_name = job
        .output
        .clone()
        .unwrap_or_else(|| "<standard output>".into());
    let (mut failed, mut audio) = (0usize, 0.0f64);
    let summary = pipeline::run(inputs, scorer.as_ref(), &opts, &mut |row| {
        failed += row.error.is_some() as usize;
        audio += row.duration_s.unwrap_or(0.0);
        progress.set_message(format!(
            "{} of audio, {failed} failed",
            human_duration(audio)
        ));
        progress.inc(1);
        writer.write(&row).map_err(|source| crate::Error::Io {
            path: report_name.clone(),
            cause: source,
        })
    })?;
    progress.finish_and_clear();
    stop.settle();
    // The run ended (finished, or stopped by a signal with every finished row written): a
    // --force report now replaces the old one.
    drop(writer);
    if let Some(replacement) = replacement {
        replacement.commit()?;
    }
    let caught = stop.caught();
    // Stopped early when the stop left inputs of this run unscreened (counted after the shard
    // and resume filters): one that arrives as the last input finishes leaves a complete report.
    let stopped_by = caught.filter(|_| summary.unstarted || summary.dropped > 0);
    let seen = seen.load(Ordering::Relaxed);
    if seen == 0 && stopped_by.is_none() {
        bail!("nothing to screen: no audio files found in the given paths");
    }
    let mut notes = Vec::new();
    if let Some(s) = shard {
        notes.push(format!(
            "shard {s}: {} of {seen} inputs",
            summary.files + skipped_done.load(Ordering::Relaxed)
        ));
    }
    if opts.vocals.is_some() {
        notes.push(format!(
            "vocal stage: {} of audio separated and judged, {} flagged by the voice",
            human_duration(summary.separated_s),
            count(summary.vocal_flagged, "file")
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
    let repeated = repeated.load(Ordering::Relaxed);
    if repeated > 0 {
        notes.push(format!("{repeated} repeated inputs screened once"));
    }
    if failed_before > 0 {
        notes.push(format!(
            "{failed_before} failed in earlier runs (kept; --retry-failed screens them again)"
        ));
    }
    if let Some(mib) = super::peak_rss_mib() {
        notes.push(format!("peak RSS {mib} MiB"));
    }
    eprintln!(
        "deepscreen: {} screened ({} failed, {} flagged synthetic at threshold {threshold}{}), \
         {} of audio in {} = {:.0}x real time, model {}, backend {}{}",
        count(summary.files, "file"),
        summary.failed,
        summary.flagged,
        match &segment_rule {
            Some(rule) => format!(" or segment threshold {}", rule.threshold),
            None => String::new(),
        },
        human_duration(summary.audio_seconds),
        human_duration(summary.elapsed.as_secs_f64()),
        summary.realtime_factor(),
        scorer.info().id,
        scorer.backend_name(),
        notes.iter().map(|n| format!("; {n}")).collect::<String>(),
    );
    if let (Some(sig), None) = (caught, stopped_by) {
        eprintln!(
            "deepscreen: {} arrived as the last inputs finished: every input is in the report",
            signal_name(sig)
        );
    }
    if let Some(sig) = stopped_by {
        let name = signal_name(sig);
        eprintln!(
            "deepscreen: stopped by {name} before the inputs ran out; every finished file is in \
             the report{}{}",
            match summary.dropped {
                0 => String::new(),
                n => format!(
                    " ({} in flight dropped, no row)",
                    crate::text::count(n, "file")
                ),
            },
            match &job.output {
                Some(_) => ": run the same command with --resume to screen the rest",
                None => "",
            }
        );
    }
    Ok(Outcome {
        summary,
        failed_before,
        stopped_by,
    })
}

fn signal_name(sig: i32) -> &'static str {
    if sig == SIGTERM { "SIGTERM" } else { "SIGINT" }
}

/// SIGINT and SIGTERM handlers for one run: the first signal is recorded (inputs stop) and
/// said at once; a second one ends the process at once, saying so. Removed again when the run
/// ends.
struct StopSignal {
    /// The last signal caught (0: none).
    caught: Arc<AtomicUsize>,
    /// Files being decoded (the pipeline counts them): what a stop drops.
    decoding: Arc<AtomicUsize>,
    /// The watcher has said that the run is stopping.
    announced: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
    /// Tells the watcher thread that the run is over.
    done: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl StopSignal {
    /// `progress`: the bar to keep the messages clear of.
    fn install(progress: ProgressBar) -> anyhow::Result<Self> {
        let caught = Arc::new(AtomicUsize::new(0));
        let decoding = Arc::new(AtomicUsize::new(0));
        let count = Arc::new(AtomicUsize::new(0));
        let dropping = Arc::new(AtomicUsize::new(0));
        let announced = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        for sig in [SIGINT, SIGTERM] {
            ids.push(signal_hook::flag::register_usize(
                sig,
                caught.clone(),
                sig as usize,
            )?);
            let (count, decoding, dropping) = (count.clone(), decoding.clone(), dropping.clone());
            // SAFETY: the handler only reads and writes atomics (async-signal-safe).
            ids.push(unsafe {
                signal_hook::low_level::register(sig, move || {
                    if count.fetch_add(1, Ordering::SeqCst) == 0 {
                        // What the stop drops, counted when it comes (the decoders let go of
                        // their files within milliseconds).
                        dropping.store(decoding.load(Ordering::SeqCst), Ordering::SeqCst);
                    }
                })
            }?);
        }
        // Messages cannot be printed from a signal handler: a thread watches the count.
        let done = Arc::new(AtomicBool::new(false));
        let (done_w, caught_w) = (done.clone(), caught.clone());
        let announced_w = announced.clone();
        let watcher = std::thread::spawn(move || {
            loop {
                // Read before the checks, so a signal that came just before the end is said.
                let finished = done_w.load(Ordering::SeqCst);
                let n = count.load(Ordering::SeqCst);
                let sig = caught_w.load(Ordering::Relaxed) as i32;
                if n >= 2 {
                    progress.suspend(|| {
                        eprintln!(
                            "deepscreen: {} again: stopped at once; every finished file is in the \
                             report (--resume cuts a torn last row and screens the rest)",
                            signal_name(sig)
                        )
                    });
                    std::process::exit(128 + sig);
                }
                if n == 1 && !announced_w.load(Ordering::SeqCst) {
                    progress.suspend(|| {
                        eprintln!(
                            "deepscreen: {}: stopping: no new file is started; {} being \
                             decoded dropped (--resume screens them again), those decoded are \
                             finished; signal again to exit at once",
                            signal_name(sig),
                            crate::text::count(dropping.load(Ordering::SeqCst), "file")
                        )
                    });
                    announced_w.store(true, Ordering::SeqCst);
                }
                if finished {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        Ok(StopSignal {
            caught,
            decoding,
            announced,
            ids,
            done,
            watcher: Some(watcher),
        })
    }

    fn flag(&self) -> Arc<AtomicUsize> {
        self.caught.clone()
    }

    fn decoding(&self) -> Arc<AtomicUsize> {
        self.decoding.clone()
    }

    /// After a signal, wait (briefly) until the watcher has said so: the acknowledgement comes
    /// before the summary, as it came before the stop.
    fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        while self.caught().is_some()
            && !self.announced.load(Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn caught(&self) -> Option<i32> {
        match self.caught.load(Ordering::Relaxed) {
            0 => None,
            sig => Some(sig as i32),
        }
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        self.done.store(true, Ordering::SeqCst);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}

/// The progress bar, only when asked for and standard error is a terminal: files done of the
/// total when `total` can tell it cheaply (with an ETA), else a spinner with the count; the
/// audio screened and the failures in its message.
fn progress_bar(wanted: bool, total: impl FnOnce() -> Option<u64> + Send + 'static) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = |template| {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
    };
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(style(
        "{spinner} {pos} files  {elapsed_precise}  {per_sec}  {msg}",
    ));
    // Redrawn on a clock, not only per row: a long file in flight does not freeze it.
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    // The inputs are counted beside the run (a directory walk can take a while): the bar gets
    // its total and an ETA when the count is in.
    let counted = bar.clone();
    std::thread::spawn(move || {
        if let Some(n) = total() {
            counted.set_length(n);
            counted.set_style(style(
                "{bar:30} {pos}/{len} files  {elapsed_precise}  ETA {eta}  {per_sec}  {msg}",
            ));
        }
    });
    bar
}

fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}
