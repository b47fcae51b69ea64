//! Command-line definitions (clap), dispatch to the library's drivers, and exit codes. The
//! work itself is done by the library: `screen::command`, `screen::merge`, `eval::command`,
//! `bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod help;
mod jobs;

use help::{REVIEW_HELP, SCREEN_EXAMPLES, exit_codes};

use deepscreen::backend::{self, BackendKind};
use deepscreen::bench;
use deepscreen::eval::command as eval;
use deepscreen::eval::protocol::ProtocolFormat;
use deepscreen::model;
use deepscreen::report::Format;
use deepscreen::review::{self, ReviewJob};
use deepscreen::screen::command::{self as screen, ScreenJob, SegmentThreshold};
use deepscreen::screen::merge;
use deepscreen::screen::shard::Shard;
use deepscreen::screen::vocals::{VocalChoice, VocalMode};

/// Exit code: every file was screened.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run finished but at least one file could not be screened (see its row).
pub const EXIT_SOME_FAILED: u8 = 1;
/// Exit code: nothing usable was produced (bad arguments, model, backend, or output).
pub const EXIT_FATAL: u8 = 2;

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
    /// Write one self-contained HTML page from a report, for reviewers: summary, score
    /// histogram, every file in a sortable table, and for the top flagged files why (window
    /// timeline, spectrogram, frequency band) with a player.
    #[command(after_long_help = REVIEW_HELP)]
    Review(ReviewArgs),
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

#[derive(Args)]
pub struct ScreenArgs {
    /// Audio files or directories to screen.
    pub paths: Vec<PathBuf>,

    /// Also read paths, one per line, from FILE ('-' for standard input).
    #[arg(long, value_name = "FILE|-")]
    pub files_from: Option<String>,

    /// Model: an embedded model (music: songs and instrumentals, two music CNNs (narrowband and
    /// wideband spectrograms) and a Whisper-encoder music head fused; music-cnn: the first CNN
    /// alone, 7x faster on a CPU, weaker on unseen generators; music-cnn-wb, music-whisper: the
    /// other members alone; speech: voices, 16 kHz, two speech CNNs and a Whisper-encoder
    /// speech head fused the same way; speech-cnn, speech-cnn-wb, speech-whisper: its members
    /// alone; speech-lcnn: an older speech model; vocal, vocal-cnn: judges for --vocal-model
    /// trained on voices separated from music; vocal-whisper: vocal's Whisper member) or a
    /// .safetensors file (a fused one may read its members from the files beside it, e.g.
    /// models/candidates/music-fusion-v3.1.safetensors).
    #[arg(short, long, value_name = "NAME|FILE", default_value = model::DEFAULT_MODEL)]
    pub model: String,

    /// Run every member of a fused model on every window. By default its cascade runs the
    /// costly Whisper member only on windows the cheap CNNs leave undecided (fitted so that at
    /// most 0.2 % of dev files change verdict; none changed on any dev list or real catalog
    /// measured). On real audio on a CPU that made `music` 2.3-2.9x and `speech` 1.3-1.6x faster. Rows
    /// say how many windows it decided without the costly member (`cascade_skipped`); their
    /// scores estimate the full fusion's. --exact gives the full fusion's scores.
    #[arg(long)]
    pub exact: bool,

    /// Compute backend; auto picks cuda, else wgpu on a hardware GPU, else cpu.
    #[arg(short, long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,

    /// Windows scored per backend call [default: 8; measured as fast as 32 or more on the CPU
    /// backend, at half the memory, and on an H200 GPU]. A batch whose buffers would not fit in
    /// the memory available is refused up front, with the largest that fits.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch: Option<u32>,

    /// Worker threads for decoding and CPU compute [default: all cores].
    #[arg(short = 'j', long, value_parser = parse_threads)]
    pub threads: Option<usize>,

    /// Report format [default: by -o's extension (.csv, .jsonl/.json), else jsonl]. A format
    /// that contradicts the extension is an error.
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,

    /// Write rows to FILE instead of standard output (`-o -`: standard output; `./-` names a
    /// file). A FILE that already holds a report is refused: continue it with --resume, or
    /// replace it with --force.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Score at or above which a file is called synthetic [default: the model's].
    #[arg(short, long, value_parser = parse_probability)]
    pub threshold: Option<f32>,

    /// The segment rule's threshold, for partial fakes (one cloned sentence in a real
    /// interview) [default: the model's, where it has a rule]: a run of the model's number of
    /// consecutive windows that all score at or above it flags the file even when the file
    /// score stays below --threshold. Rows give the run (segment_score, segment_start_s,
    /// segment_end_s). `off` decides by the file score alone.
    #[arg(long, value_name = "T|off", value_parser = parse_segment_threshold)]
    pub segment_threshold: Option<SegmentThreshold>,

    #[command(flatten)]
    pub vocals: VocalArgs,

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

    /// With --resume: drop the report's error rows and screen those inputs again.
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,

    /// Replace the report already in -o FILE (without it, a non-empty FILE is refused). The
    /// new report is written beside it (.FILE.replacing) and renamed over it when the run ends,
    /// finished or stopped by a signal: a crash or a fatal error leaves the old one as it was.
    #[arg(long, requires = "output", conflicts_with = "resume")]
    pub force: bool,

    /// Screen only shard I of N (0-based): inputs whose path hashes to I mod N. Defaults to the
    /// Slurm array task (SLURM_ARRAY_TASK_ID/COUNT) or the Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX with DEEPSCREEN_SHARD_COUNT) when those are set.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,

    /// Write rows in input order instead of completion order.
    #[arg(long)]
    pub ordered: bool,

    /// When the run finishes, also write the review page of its report (`deepscreen review`
    /// with its defaults) to FILE. Needs -o.
    #[arg(long, value_name = "FILE.html", requires = "output", value_parser = parse_file_output)]
    pub html: Option<PathBuf>,
}

#[derive(Args)]
pub struct ReviewArgs {
    /// A report of `deepscreen screen` (JSON Lines or CSV, found from its content).
    pub report: PathBuf,

    /// Write the page to FILE.
    #[arg(short, long, value_name = "FILE.html", value_parser = parse_file_output)]
    pub output: PathBuf,

    /// Flagged files shown in detail (highest score first).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub top: usize,

    /// Put each detailed file's most suspicious window in the page as audio (a larger page that
    /// plays without the catalog).
    #[arg(long)]
    pub embed_audio: bool,

    /// Model to re-screen flagged files with [default: the embedded model the report names].
    #[arg(short, long, value_name = "NAME|FILE")]
    pub model: Option<String>,

    /// Compute backend for re-screening.
    #[arg(short, long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,

    /// Do not decode or score anything: summary, histogram and table only.
    #[arg(long)]
    pub no_rescreen: bool,

    /// Frequency bands of the "which band" occlusion map.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub bands: u32,

    /// A labelled protocol (as for `eval`; its paths must match the report's): adds DET and ROC
    /// curves and the EER of the report's scores.
    #[arg(long, value_name = "FILE")]
    pub protocol: Option<PathBuf>,

    /// Protocol format.
    #[arg(long, value_enum, default_value_t = ProtocolFormat::Auto)]
    pub protocol_format: ProtocolFormat,

    /// Directory the protocol's audio paths are relative to [default: the protocol's].
    #[arg(long, value_name = "DIR")]
    pub audio_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Time the whole pipeline (decode, resample, windows, scoring) on the audio files of DIR
    /// (walked like `screen`) per backend and thread count, and decoding alone. Without it, one
    /// synthetic batch is timed per backend.
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,

    /// Model: an embedded model's name or a .safetensors file [default: every embedded model
    /// synthetic; the music model with --catalog].
    #[arg(short, long, value_name = "NAME|FILE")]
    pub model: Option<String>,

    /// Time fused models with every member on every window (their cascade off), as
    /// `screen --exact` runs them. Synthetic windows are noise: time the cascade on a --catalog
    /// of real audio, where the rows' skipped windows are counted too.
    #[arg(long)]
    pub exact: bool,

    /// Timed repetitions per stage in the synthetic mode (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,

    /// Backends to time, comma-separated [default: cpu, plus wgpu on a hardware GPU and cuda
    /// where available]. Those that cannot start are reported and skipped.
    #[arg(short, long, value_enum, value_delimiter = ',')]
    pub backends: Vec<BackendKind>,

    /// Thread counts to time, comma-separated [default: 1 and all cores].
    #[arg(short = 'j', long, value_delimiter = ',', value_parser = parse_threads)]
    pub threads: Vec<usize>,

    /// Windows per backend call [default: 8, as `screen`].
    #[arg(long)]
    pub batch: Option<usize>,
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

    /// Model: an embedded model (music, music-cnn, music-cnn-wb, music-whisper, speech,
    /// speech-cnn, speech-cnn-wb, speech-whisper, speech-lcnn, vocal, vocal-whisper, vocal-cnn)
    /// or a .safetensors model file.
    #[arg(short, long, value_name = "NAME|FILE", default_value = model::DEFAULT_MODEL)]
    pub model: String,

    /// Run every member of a fused model on every window. By default its cascade runs the
    /// costly Whisper member only on windows the cheap CNNs leave undecided (fitted so that at
    /// most 0.2 % of dev files change verdict; none changed on any dev list or real catalog
    /// measured). On real audio on a CPU that made `music` 2.3-2.9x and `speech` 1.3-1.6x faster. Rows
    /// say how many windows it decided without the costly member (`cascade_skipped`); their
    /// scores estimate the full fusion's. --exact gives the full fusion's scores.
    #[arg(long)]
    pub exact: bool,

    /// Compute backend.
    #[arg(short, long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,

    /// Windows scored per backend call [default: 8, measured as fast as larger batches].
    #[arg(long)]
    pub batch: Option<usize>,

    /// Write an ASVspoof-style score file (ID ATTACK KEY SCORE, higher = more bona fide).
    #[arg(long, value_name = "FILE", value_parser = parse_file_output)]
    pub scores: Option<PathBuf>,

    /// Draw the pooled ROC curve to FILE (SVG).
    #[arg(long, value_name = "FILE.svg", value_parser = parse_file_output)]
    pub plot: Option<PathBuf>,

    /// Draw the pooled DET curve to FILE (SVG): miss vs false-alarm rate on probit axes, with the
    /// model's operating point; the low false-alarm end a catalog screen lives in is readable.
    #[arg(long, value_name = "FILE.svg", value_parser = parse_file_output)]
    pub det: Option<PathBuf>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub vocals: VocalArgs,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Reports to combine (all JSON Lines, or all CSV).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,

    /// Write the merged report to FILE instead of standard output (`-o -`: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Format of the reports: found from their content (JSON Lines, or deepscreen's CSV
    /// header); mixed or unknown reports are refused. Given, it must match.
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,

    /// The catalog's path list (one per line, as given to --files-from): report inputs with
    /// no row.
    #[arg(long, value_name = "LIST")]
    pub expect: Option<PathBuf>,
}

fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 threads cannot do any work (leave -j out to use every core)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

fn parse_segment_threshold(s: &str) -> Result<SegmentThreshold, String> {
    match s {
        "off" => Ok(SegmentThreshold::Off),
        _ => parse_probability(s)
            .map(SegmentThreshold::At)
            .map_err(|e| format!("{e} (give a score in [0, 1], or off)")),
    }
}

/// An output that can only be a file: `-` is refused rather than silently naming a file `-`.
fn parse_file_output(s: &str) -> Result<PathBuf, String> {
    if s == "-" {
        Err(
            "this writes a file, not standard output: give a file name (./- for one named -)"
                .into(),
        )
    } else {
        Ok(PathBuf::from(s))
    }
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
        Command::Screen(args) => {
            let html = args.html.clone();
            let job: ScreenJob = match args.try_into() {
                Ok(job) => job,
                Err(e) => {
                    eprintln!("deepscreen: error: {e}");
                    return ExitCode::from(EXIT_FATAL);
                }
            };
            screen::run(&job).and_then(|outcome| match outcome.stopped_by {
                Some(sig) => Ok(128 + sig as u8),
                None => {
                    let code =
                        exit_code_for_failures(outcome.summary.failed + outcome.failed_before);
                    match (html, &job.output) {
                        (Some(page), Some(report)) => {
                            let review = ReviewJob {
                                model: Some(job.model.clone()),
                                backend: job.backend,
                                ..ReviewJob::new(report.clone(), page)
                            };
                            run_review(&review).map(|c| code.max(c))
                        }
                        _ => Ok(code),
                    }
                }
            })
        }
        Command::Review(args) => run_review(&args.into()),
        Command::Merge(args) => merge::run(&args.into())
            .map(|report| exit_code_for_failures(report.duplicates.len() + report.missing.len())),
        Command::Eval(args) => eval::run(&args.into(), &mut std::io::stdout().lock())
            .map(|report| exit_code_for_failures(report.failed)),
        Command::Bench(args) => {
            bench::run(&args.into(), &mut std::io::stdout().lock()).map(|()| EXIT_OK)
        }
        Command::Devices { json } => backend::write_status(&mut std::io::stdout().lock(), json)
            .map(|()| EXIT_OK)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`deepscreen devices | head`): stop quietly, like other tools.
        Err(e)
            if e.chain().any(|c| {
                let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
                c.downcast_ref::<std::io::Error>().is_some_and(broken)
                    || matches!(c.downcast_ref::<deepscreen::Error>(),
                        Some(deepscreen::Error::Io { cause, .. }) if broken(cause))
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

/// Write a review page and say what it holds.
fn run_review(job: &ReviewJob) -> anyhow::Result<u8> {
    let outcome = review::run(job)?;
    eprintln!(
        "{}: {} rows, {} flagged, {} explained{}, {:.1} MB{}",
        job.output.display(),
        outcome.rows,
        outcome.flagged,
        outcome.explained,
        if outcome.explain_failed > 0 {
            format!(" ({} could not be)", outcome.explain_failed)
        } else {
            String::new()
        },
        outcome.bytes as f64 / 1e6,
        outcome.note.map(|n| format!("; {n}")).unwrap_or_default()
    );
    Ok(exit_code_for_failures(outcome.explain_failed))
}

fn exit_code_for_failures(failures: usize) -> u8 {
    if failures > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_OK
    }
}

/// The vocal stage's options, shared by `screen` and `eval`.
#[derive(Args, Debug, Clone)]
pub struct VocalArgs {
    /// Voices inside music: look for a voice (a cheap gate: the separator's voice network on
    /// every 4th 11.9 s segment's lowest 2.8 kHz, the first always), separate it where there is one (Spleeter's
    /// 2-stem network, embedded) and judge it alone with the embedded `speech` detector, which
    /// catches a cloned voice over a real backing track that the whole-mix music score misses.
    /// Rows give vocal_share (the gate's highest voice share), vocal_score and where it lies
    /// (vocal_start_s, vocal_end_s); a vocal_score at or above --vocal-threshold flags the file,
    /// and the file score is the larger of the music score and the vocal score (its threshold
    /// mapped onto --threshold). auto: on for a music model (windows at 44.1 kHz).
    #[arg(long = "vocals", value_enum, default_value_t = VocalMode::Auto)]
    pub mode: VocalMode,

    /// The vocal stage's threshold on vocal_score [default: the one fitted for the voice model
    /// on real voices separated from music and on real music alone, 0.515 for `speech` v3 (its
    /// own 0.862 is set on clean voices); a voice model with none fitted is held to its own;
    /// models/vocals.md].
    #[arg(long, value_parser = parse_probability)]
    pub vocal_threshold: Option<f32>,

    /// The vocal stage's gate: the voice share at or above which a segment is separated and
    /// judged [default: 0.0743, which lets 10 % of real instrumental music through and catches
    /// 96-98 % of voices at the music's loudness, models/separator-gate.txt]. Lower catches
    /// quieter voices at more cost; 0 separates every tested segment.
    #[arg(long, value_name = "SHARE", value_parser = parse_probability)]
    pub vocal_gate: Option<f32>,

    /// The model that judges the separated voice [default: the embedded `speech` detector].
    /// `vocal`: `speech` with a head trained on separated voices added (one more Whisper head,
    /// the encoder still runs once): more fakes caught at 1 % of real voices, but more false
    /// alarms on old, low-band voices it never heard (models/vocals.md). `vocal-cnn`: an older
    /// head trained on separated voices, which ranks them less well.
    #[arg(long, value_name = "NAME|FILE")]
    pub vocal_model: Option<String>,
}

impl VocalArgs {
    pub fn choice(self) -> VocalChoice {
        VocalChoice {
            mode: self.mode,
            voice_model: self.vocal_model,
            threshold: self.vocal_threshold,
            gate_share: self.vocal_gate,
        }
    }
}
