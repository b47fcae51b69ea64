//! `deepscreen review`: one self-contained HTML page from a screen report, for the people who
//! confirm each flagged file before anything is taken down. Summary, score histogram (and
//! DET/ROC when a labelled protocol is given), a sortable, filterable table of every file, and
//! for the top flagged files: window-score timeline, spectrogram of the most suspicious window
//! from the engine's own front-end, which frequency band drives the score, and a player.

pub mod explain;
pub mod html;
pub mod media;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::backend::BackendKind;
use crate::eval::protocol::{self, ProtocolFormat};
use crate::model::{self, Scorer};
use crate::report::{Row, RowReader, Verdict};
use crate::screen::vocals::{self, VoiceDetail};
use explain::Detail;

/// What to review (the `review` command's options).
#[derive(Debug, Clone)]
pub struct ReviewJob {
    pub report: PathBuf,
    pub output: PathBuf,
    /// Flagged files shown in detail, highest score first.
    pub top: usize,
    /// Put each detailed file's most suspicious window in the page as audio.
    pub embed_audio: bool,
    /// The model to re-screen flagged files with [default: the embedded model whose id the
    /// report names].
    pub model: Option<String>,
    pub backend: BackendKind,
    /// Re-screen flagged files (window scores, spectrogram, band map); off: table and plots only.
    pub rescreen: bool,
    /// Frequency bands of the occlusion map.
    pub bands: usize,
    /// A labelled protocol (as for `eval`): DET and ROC of the report's scores.
    pub protocol: Option<PathBuf>,
    pub protocol_format: ProtocolFormat,
    pub audio_dir: Option<PathBuf>,
}

impl ReviewJob {
    /// A review of `report` into `output` with the defaults of `deepscreen review`.
    pub fn new(report: PathBuf, output: PathBuf) -> Self {
        ReviewJob {
            report,
            output,
            top: 200,
            embed_audio: false,
            model: None,
            backend: BackendKind::Auto,
            rescreen: true,
            bands: 8,
            protocol: None,
            protocol_format: ProtocolFormat::Auto,
            audio_dir: None,
        }
    }
}

/// What a review produced.
#[derive(Debug, Clone, Default)]
pub struct ReviewOutcome {
    pub rows: usize,
    pub flagged: usize,
    /// Flagged files shown with timeline, spectrogram and band map.
    pub explained: usize,
    /// Flagged files whose detail could not be made (named on standard error, and in the page).
    pub explain_failed: usize,
    pub bytes: u64,
    /// Why there are no details (no model, --no-rescreen), if so.
    pub note: Option<String>,
}

/// Everything the page shows, gathered.
pub struct Page {
    pub report: PathBuf,
    pub rows: Vec<Row>,
    /// Row indices in table order: flagged first, highest score first.
    pub order: Vec<usize>,
    /// (row index, detail or why it failed) for the top flagged files.
    pub details: Vec<(usize, Result<Detail, String>)>,
    /// (row index, its separated voice or why it failed) for the top flagged files the vocal
    /// stage judged.
    pub voices: HashMap<usize, Result<VoiceDetail, String>>,
    pub labels: Option<Labels>,
    pub model: Option<PageModel>,
    pub embed_audio: bool,
    pub output_dir: PathBuf,
    pub note: Option<String>,
}

/// The re-screening model's facts the page needs.
pub struct PageModel {
    pub rate: u32,
    pub db_per_unit: f32,
    pub bin_hz: Vec<f64>,
}

/// Bona fide / spoof labels of the report's rows, from a protocol.
pub struct Labels {
    pub protocol: PathBuf,
    /// Per row: Some(true) spoof, Some(false) bona fide, None not in the protocol.
    pub spoof: Vec<Option<bool>>,
}

/// Where a row stands, in the table's default order; `code` is its number in the page's data
/// (the page's filter and colours use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Flagged = 0,
    BonaFide = 1,
    NoSignal = 2,
    /// An error row, or a row without a verdict.
    Failed = 3,
}

impl Standing {
    pub fn of(row: &Row) -> Standing {
        match (&row.error, row.verdict) {
            (Some(_), _) | (None, None) => Standing::Failed,
            (None, Some(Verdict::Synthetic)) => Standing::Flagged,
            (None, Some(Verdict::BonaFide)) => Standing::BonaFide,
            (None, Some(Verdict::NoSignal)) => Standing::NoSignal,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Every row of the report at `path`.
fn read_rows(path: &Path) -> crate::Result<Vec<Row>> {
    let reader = RowReader::open(path)?.ok_or_else(|| {
        crate::Error::Report(format!(
            "{}: empty, or neither a JSON Lines nor a CSV report of `deepscreen screen`",
            path.display()
        ))
    })?;
    reader.map(|entry| entry.map(|e| e.row)).collect()
}

pub fn run(job: &ReviewJob) -> anyhow::Result<ReviewOutcome> {
    let rows = read_rows(&job.report)?;
    if rows.is_empty() {
        bail!("{}: the report has no rows", job.report.display());
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&rows[a], &rows[b]);
        Standing::of(ra)
            .cmp(&Standing::of(rb))
            .then(
                rb.score
                    .unwrap_or(-1.0)
                    .total_cmp(&ra.score.unwrap_or(-1.0)),
            )
            .then(ra.path.cmp(&rb.path))
    });
    let flagged: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| Standing::of(&rows[i]) == Standing::Flagged)
        .collect();
    let labels = job
        .protocol
        .as_ref()
        .map(|p| label_rows(&rows, p, job.protocol_format, job.audio_dir.as_deref()))
        .transpose()?;

    let mut outcome = ReviewOutcome {
        rows: rows.len(),
        flagged: flagged.len(),
        ..ReviewOutcome::default()
    };
    let top: Vec<usize> = flagged.iter().copied().take(job.top).collect();
    let mut details = Vec::new();
    let mut page_model = None;
    if !job.rescreen {
        outcome.note = Some("details were not made (--no-rescreen)".into());
    } else if !top.is_empty() {
        match scorer_for(job, &rows)? {
            Ok(scorer) => {
                let net = scorer.info().explained();
                page_model = Some(PageModel {
                    rate: net.config.sample_rate,
                    db_per_unit: explain::db_per_unit(net.log, net.config.frontend.power),
                    bin_hz: net.bin_centres_hz.clone(),
                });
                let bar = progress_bar(top.len() as u64);
                for &i in &top {
                    let row = &rows[i];
                    let detail = explain::explain_file(
                        scorer.as_ref(),
                        &row.file(),
                        row.segments.as_deref(),
                        job.bands,
                    )
                    .map_err(|e| e.to_string());
                    match &detail {
                        Ok(_) => outcome.explained += 1,
                        Err(e) => {
                            outcome.explain_failed += 1;
                            bar.suspend(|| eprintln!("review: {}: {e}", row.path));
                        }
                    }
                    details.push((i, detail));
                    bar.inc(1);
                }
                bar.finish_and_clear();
            }
            Err(why) => outcome.note = Some(why),
        }
    }
    let voices = if job.rescreen {
        separated_voices(job, &rows, &top)
    } else {
        HashMap::new()
    };
    let page = Page {
        report: job.report.clone(),
        rows,
        order,
        details,
        voices,
        labels,
        model: page_model,
        embed_audio: job.embed_audio,
        output_dir: std::path::absolute(&job.output)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default(),
        note: outcome.note.clone(),
    };
    let text = html::render(&page)?;
    std::fs::write(&job.output, &text)
        .with_context(|| format!("cannot write {}", job.output.display()))?;
    outcome.bytes = text.len() as u64;
    Ok(outcome)
}

/// The separated voice of each of the `top` rows whose vocal stage judged a voice, so that a
/// reviewer can listen to the voice alone (how a cloned voice is confirmed).
fn separated_voices(
    job: &ReviewJob,
    rows: &[Row],
    top: &[usize],
) -> HashMap<usize, Result<VoiceDetail, String>> {
    let judged: Vec<usize> = top
        .iter()
        .copied()
        .filter(|&i| rows[i].vocal_start_s.is_some() && rows[i].vocal_end_s.is_some())
        .collect();
    if judged.is_empty() {
        return HashMap::new();
    }
    let stage = match vocals::open(job.backend, vocals::DEFAULT_VOICE_MODEL, None, None) {
        Ok(stage) => stage,
        Err(e) => {
            let why = format!("the vocal stage could not start: {e}");
            return judged.into_iter().map(|i| (i, Err(why.clone()))).collect();
        }
    };
    judged
        .into_iter()
        .map(|i| {
            let row = &rows[i];
            let (a, b) = (
                row.vocal_start_s.unwrap_or(0.0),
                row.vocal_end_s.unwrap_or(0.0),
            );
            let detail = stage
                .voice_detail(&row.file(), a, b, job.bands)
                .map_err(|e| e.to_string());
            if let Err(e) = &detail {
                eprintln!("review: {}: separated voice: {e}", row.path);
            }
            (i, detail)
        })
        .collect()
}

/// The scorer that re-screens flagged files: `--model`, or the embedded model whose id the
/// report names. `Ok(Err(why))` when there is none (the page is made without details).
fn scorer_for(job: &ReviewJob, rows: &[Row]) -> anyhow::Result<Result<Box<dyn Scorer>, String>> {
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    let detector = match &job.model {
        Some(m) => model::load(m)?,
        None => {
            // Match on the config alone: parsing every embedded model's weights is slow.
            let found = model::EMBEDDED.iter().find(|(name, bytes)| {
                model::file::read_config(bytes, name).is_ok_and(|config| ids.contains(config.id()))
            });
            match found {
                Some((name, _)) => model::load(name)?,
                None => {
                    return Ok(Err(format!(
                        "no details: the report's model ({}) is not embedded in this build; \
                         pass --model FILE to re-screen the flagged files",
                        ids.into_iter().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
    };
    let id = detector.info().id;
    if !ids.contains(id.as_str()) {
        bail!(
            "--model {} is {:?}, but the report was written by {}: window scores and \
             explanations would not match the report's scores",
            job.model.as_deref().unwrap_or_default(),
            id,
            ids.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(Ok(model::bind(job.backend, detector)?))
}

/// Label the report's rows from a protocol, by path (as written, or both made absolute).
fn label_rows(
    rows: &[Row],
    protocol_path: &Path,
    format: ProtocolFormat,
    audio_dir: Option<&Path>,
) -> anyhow::Result<Labels> {
    let trials = protocol::read(protocol_path, format, audio_dir)?;
    let key = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let by_path: HashMap<PathBuf, bool> = trials
        .iter()
        .flat_map(|t| [(t.path.clone(), t.spoof), (key(&t.path), t.spoof)])
        .collect();
    let spoof: Vec<Option<bool>> = rows
        .iter()
        .map(|r| {
            let f = r.file();
            by_path.get(&f).or_else(|| by_path.get(&key(&f))).copied()
        })
        .collect();
    if spoof.iter().all(Option::is_none) {
        bail!(
            "{}: none of the report's {} paths is in the protocol (are the paths relative to \
             another directory? see --audio-dir)",
            protocol_path.display(),
            rows.len()
        );
    }
    Ok(Labels {
        protocol: protocol_path.to_path_buf(),
        spoof,
    })
}

/// A bar over the flagged files being explained, only when standard error is a terminal.
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "explaining flagged files {bar:30} {pos}/{len}  {elapsed_precise}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
