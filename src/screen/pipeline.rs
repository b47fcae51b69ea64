//! The screening pipeline, three stages joined by bounded channels (back-pressure everywhere):
//!
//! 1. decode workers pull inputs from a shared stream and send windows;
//! 2. the batcher packs windows of many files into full device batches (a partial batch goes
//!    out when no window has arrived for `FLUSH_AFTER`, so a slow decoder never holds finished
//!    files back);
//! 3. the scorer runs the backend on each batch and turns finished files into rows (completion
//!    order, or input order with `ordered`).
//!
//! The batcher → scorer channel holds one batch: while the device scores batch k, batch k+1 is
//! being filled (double buffering), and the scorer keeps two batches in flight on the device,
//! collecting the older only after submitting the next (see `Aggregator::consume`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::inputs::{Input, Inputs};
use super::segment_run::StrongestRun;
use super::vocals::{VocalFinding, VocalStage};
use crate::Result;
use crate::audio::{AudioSummary, NetworkWindows, read_windows};
use crate::model::config::Aggregation;
use crate::model::config::SegmentRule;
use crate::model::{DetectorInfo, Scorer, Submitted};
use crate::report::{Row, Segment, Verdict, path_hex};

#[derive(Debug, Clone)]
pub struct ScreenOptions {
    /// Windows per backend call.
    pub batch: usize,
    /// Decode workers.
    pub decoders: usize,
    /// Decision threshold on the calibrated score.
    pub threshold: f32,
    /// Flags a file on a run of high-scoring windows too (partial fakes); None: the file
    /// score alone decides.
    pub segment_rule: Option<SegmentRule>,
    /// Include per-window scores in each row.
    pub segments: bool,
    /// Write rows in input order (held back until earlier inputs finish).
    pub ordered: bool,
    /// Non-zero (a signal's number) when the run is to stop: the files in flight are dropped
    /// without a row (`--resume` screens them again) and no new one is started.
    pub stop: Option<Arc<AtomicUsize>>,
    /// Counts the files being decoded now: what a stop will drop (for its message).
    pub decoding: Option<Arc<AtomicUsize>>,
    /// Voices inside music: the vocal stage each decode worker runs on the files it decoded
    /// (`screen::vocals`); None: off.
    pub vocals: Option<Vocals>,
}

/// The vocal stage shared by the decode workers.
#[derive(Clone)]
pub struct Vocals(pub Arc<dyn VocalStage>);

impl std::fmt::Debug for Vocals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vocals({:?})", self.0.settings())
    }
}

/// Windows per backend call when `--batch` is not given. Measured (BENCHMARKS.md): on the CPU
/// backend 8 is as fast as 32 at about half the memory; on an H200, 8 is as fast as 32 and 128
/// for the speech model (CUDA and wgpu) and 14-18 % faster for the music model, at less memory.
pub const DEFAULT_BATCH: usize = 8;

/// Copies of a window the pipeline may hold per slot of `--batch`: two batches' worth in the
/// decode → batcher channel, the batch being filled, the two batches in flight (a cascade keeps
/// its deferred members' windows on the host until it advances them), and the one being
/// submitted.
const WINDOW_COPIES: u64 = 6;
/// Activations of the CPU backend's forward pass alive at once, in units of the largest one
/// (an op's input and output).
const CPU_ACTIVATIONS: u64 = 2;
/// Share of the available memory a run's batches may take.
const MEMORY_SHARE: f64 = 0.8;

/// Host memory (bytes) the batches of a run take at `batch` windows per backend call: each
/// network's windows in flight, plus on the CPU backend its forward pass's activations.
pub fn batch_memory(info: &DetectorInfo, batch: usize, on_cpu: bool) -> u64 {
    let per_window: u64 = info
        .networks
        .iter()
        .map(|n| {
            let activations = if on_cpu {
                CPU_ACTIVATIONS * n.largest_tensor as u64
            } else {
                0
            };
            4 * (WINDOW_COPIES * n.window_samples as u64 + activations)
        })
        .sum();
    per_window * batch as u64
}

/// The batch a run uses: `--batch` or [`DEFAULT_BATCH`], checked against the memory available.
pub fn chosen_batch(requested: Option<usize>, scorer: &dyn crate::model::Scorer) -> Result<usize> {
    let batch = requested.unwrap_or(DEFAULT_BATCH).max(1);
    check_batch(
        scorer.info(),
        batch,
        scorer.backend_name(),
        scorer.tensors_on_host(),
    )?;
    Ok(batch)
}

/// Refuse a `--batch` whose buffers would not fit in the memory this machine has available
/// (Linux's MemAvailable), before anything is allocated: better a clear error than an abort
/// minutes into a run. `on_host`: the backend's activations are in host memory too.
pub fn check_batch(
    info: &DetectorInfo,
    batch: usize,
    backend: &'static str,
    on_host: bool,
) -> Result<()> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let on_cpu = on_host;
    let need = batch_memory(info, batch, on_cpu);
    let budget = (available as f64 * MEMORY_SHARE) as u64;
    if need <= budget {
        return Ok(());
    }
    let per_window = batch_memory(info, 1, on_cpu).max(1);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(crate::Error::backend(
        backend,
        format!(
            "--batch {batch} needs about {:.1} GiB for model {} on this backend \
         ({:.1} MiB per window: audio in flight{}), but {:.1} GiB of memory is available: \
         use --batch {} or less",
            gib(need),
            info.id,
            per_window as f64 / (1u64 << 20) as f64,
            if on_cpu { " and activations" } else { "" },
            gib(available),
            (budget / per_window).max(1)
        ),
    ))
}

/// MemAvailable from /proc/meminfo (Linux); None elsewhere.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Longest a partial batch waits for more windows before it is scored anyway.
const FLUSH_AFTER: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub files: usize,
    pub failed: usize,
    pub flagged: usize,
    /// Files with no active signal anywhere (verdict `no-signal`, no score).
    pub no_signal: usize,
    pub audio_seconds: f64,
    pub elapsed: Duration,
    /// Time the scorer spent in the backend (upload, compute, readback).
    pub device_time: Duration,
    /// Decode + resample + windowing time summed over workers (excluding time blocked on a
    /// full queue).
    pub decode_time: Duration,
    /// The vocal stage's time summed over workers (its own decode, gate, separation and
    /// judgement), and the seconds of audio it separated.
    pub vocal_time: Duration,
    pub separated_s: f64,
    /// Files whose separated voice scored at or above the vocal threshold.
    pub vocal_flagged: usize,
    /// Files dropped part-way by a stop (`ScreenOptions::stop`): no row, screened again by
    /// `--resume`.
    pub dropped: usize,
    /// A stop (`ScreenOptions::stop`) left inputs that were never started: the run is
    /// incomplete even when nothing was in flight.
    pub unstarted: bool,
}

impl Summary {
    /// Seconds of audio screened per second of wall time.
    pub fn realtime_factor(&self) -> f64 {
        self.audio_seconds / self.elapsed.as_secs_f64().max(1e-9)
    }
}

enum Msg {
    Window {
        file: usize,
        window: NetworkWindows,
    },
    Done {
        file: usize,
        path: PathBuf,
        /// Windows the worker sent for this file before finishing (or failing).
        sent: usize,
        result: std::result::Result<AudioSummary, String>,
        decode_time: Duration,
        /// The vocal stage's finding (None: off or not run) and its time.
        vocals: Option<std::result::Result<VocalFinding, String>>,
        vocal_time: Duration,
    },
}

/// What the batcher hands the scorer, in order.
enum Stage {
    Batch {
        /// The batch's windows as each network takes them, laid end to end.
        inputs: Vec<Vec<f32>>,
        meta: Vec<(usize, u64, u64)>,
    },
    Done(Msg),
}

/// A batch submitted to the scorer and not yet collected.
struct InFlight {
    submitted: Result<Submitted>,
    /// (file, start, end) of each window, in batch order.
    meta: Vec<(usize, u64, u64)>,
}

/// Batches the scorer keeps submitted and not yet collected (see `Aggregator::consume`).
const IN_FLIGHT: usize = 2;

/// Per-file aggregation state, kept only until the file's row is written.
#[derive(Default)]
struct FileState {
    /// Windows the decoder sent (known once it is done).
    sent: usize,
    scored: usize,
    sum: f64,
    max: f32,
    segments: Vec<(u64, u64, f32, Vec<Option<f32>>)>,
    /// Windows a cascade decided without the fusion's costly members.
    cascade_skipped: usize,
    /// The strongest run of windows, for the segment rule.
    run: Option<StrongestRun>,
    summary: Option<AudioSummary>,
    vocals: Option<std::result::Result<VocalFinding, String>>,
    error: Option<String>,
    path: PathBuf,
    done: bool,
}

/// Screen `inputs`, calling `on_row` once per input.
pub fn run(
    inputs: Inputs,
    scorer: &dyn Scorer,
    opts: &ScreenOptions,
    on_row: &mut dyn FnMut(Row) -> Result<()>,
) -> Result<Summary> {
    let started = Instant::now();
    let batch = opts.batch.max(1);
    let (tx, rx) = sync_channel::<Msg>(batch * 2);
    let (stage_tx, stage_rx) = sync_channel::<Stage>(1);
    // Scored batch buffers go back to the batcher: two buffers alternate, no allocation churn
    // (fresh multi-MiB buffers freed on another thread made the allocator's footprint grow).
    let (recycle_tx, recycle_rx) = sync_channel::<Vec<Vec<f32>>>(2);
    // Workers take (index, input) pairs from here; indices follow input order.
    let source = Mutex::new(inputs.enumerate());
    let lengths: Vec<usize> = scorer
        .info()
        .networks
        .iter()
        .map(|n| n.window_samples)
        .collect();
    let dropped = AtomicUsize::new(0);
    let unstarted = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..opts.decoders.max(1) {
            let tx = tx.clone();
            let left = Left {
                dropped: &dropped,
                unstarted: &unstarted,
            };
            let stop = opts.stop.as_deref();
            let decoding = opts.decoding.as_deref();
            let source = &source;
            let vocals = opts.vocals.as_ref().map(|v| v.0.as_ref());
            scope.spawn(move || decode_worker(source, scorer, vocals, tx, (stop, decoding), left));
        }
        drop(tx);
        scope.spawn(move || batcher(rx, stage_tx, recycle_rx, batch, &lengths));
        let mut agg = Aggregator {
            scorer,
            opts,
            on_row,
            files: HashMap::new(),
            held: BTreeMap::new(),
            next_out: 0,
            summary: Summary::default(),
            recycle: recycle_tx,
        };
        // On a fatal error (the report cannot be written) the receivers are dropped: the
        // batcher's and then the workers' sends fail and they finish.
        let result = agg.consume(stage_rx).and_then(|()| agg.flush_held());
        let mut summary = agg.summary;
        summary.elapsed = started.elapsed();
        summary.dropped = dropped.load(Ordering::Relaxed);
        summary.unstarted = unstarted.load(Ordering::Relaxed);
        result.map(|_| summary)
    })
}

/// Stage 2: pack windows into batches of `batch`, pass `Done` messages through in order.
fn batcher(
    rx: Receiver<Msg>,
    tx: SyncSender<Stage>,
    recycled: Receiver<Vec<Vec<f32>>>,
    batch: usize,
    lengths: &[usize],
) {
    let fresh = || -> Vec<Vec<f32>> {
        lengths
            .iter()
            .map(|len| Vec::with_capacity(batch * len))
            .collect()
    };
    let mut inputs = fresh();
    let mut meta: Vec<(usize, u64, u64)> = Vec::with_capacity(batch);
    // Hand the pending batch to the scorer; false once the scorer has gone.
    let flush = |inputs: &mut Vec<Vec<f32>>, meta: &mut Vec<(usize, u64, u64)>| -> bool {
        if meta.is_empty() {
            return true;
        }
        let next = match recycled.try_recv() {
            Ok(mut buffers) => {
                buffers.iter_mut().for_each(Vec::clear);
                buffers
            }
            Err(_) => fresh(),
        };
        let inputs = std::mem::replace(inputs, next);
        let meta = std::mem::replace(meta, Vec::with_capacity(batch));
        tx.send(Stage::Batch { inputs, meta }).is_ok()
    };
    loop {
        let msg = if meta.is_empty() {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(FLUSH_AFTER) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    if !flush(&mut inputs, &mut meta) {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        match msg {
            Msg::Window { file, window } => {
                for (buffer, x) in inputs.iter_mut().zip(&window.inputs) {
                    buffer.extend_from_slice(x);
                }
                meta.push((file, window.start, window.end));
                if meta.len() >= batch && !flush(&mut inputs, &mut meta) {
                    return;
                }
            }
            done @ Msg::Done { .. } => {
                if tx.send(Stage::Done(done)).is_err() {
                    return;
                }
            }
        }
    }
    flush(&mut inputs, &mut meta);
}

/// Decode and window every input on `decoders` threads without scoring: the decode side's
/// ceiling, for `deepscreen bench`.
pub fn decode_only(inputs: Inputs, info: &DetectorInfo, decoders: usize) -> Summary {
    let started = Instant::now();
    let source = Mutex::new(inputs);
    let totals = Mutex::new(Summary::default());
    std::thread::scope(|scope| {
        for _ in 0..decoders.max(1) {
            scope.spawn(|| {
                loop {
                    let next = source.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(input) = next else { return };
                    let t = Instant::now();
                    let result = match &input {
                        Input::File(p) => read_windows(p, info, &mut |_| Ok(())).ok(),
                        Input::Broken { .. } => None,
                    };
                    let mut s = totals.lock().unwrap_or_else(|p| p.into_inner());
                    s.files += 1;
                    s.decode_time += t.elapsed();
                    match result {
                        Some(a) => s.audio_seconds += a.duration_s,
                        None => s.failed += 1,
                    }
                }
            });
        }
    });
    let mut summary = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    summary.elapsed = started.elapsed();
    summary
}

type Source = Mutex<std::iter::Enumerate<Inputs>>;

/// What a stop left unscreened, counted by the decode workers.
#[derive(Clone, Copy)]
struct Left<'a> {
    dropped: &'a AtomicUsize,
    unstarted: &'a AtomicBool,
}

fn decode_worker(
    source: &Source,
    scorer: &dyn Scorer,
    vocals: Option<&dyn VocalStage>,
    tx: SyncSender<Msg>,
    (stop, decoding): (Option<&AtomicUsize>, Option<&AtomicUsize>),
    left: Left,
) {
    let info = scorer.info();
    let stopping = || stop.is_some_and(|s| s.load(Ordering::Relaxed) != 0);
    let next_input = || source.lock().unwrap_or_else(|p| p.into_inner()).next();
    // On a stop, whether inputs remain decides between "stopped early" and "complete": a stop
    // that finds nothing in flight may still leave inputs never started.
    let note_unstarted = || {
        if next_input().is_some() {
            left.unstarted.store(true, Ordering::Relaxed);
        }
    };
    loop {
        if stopping() {
            note_unstarted();
            return;
        }
        let next = next_input();
        let Some((file, input)) = next else {
            return;
        };
        let path = input.path().to_path_buf();
        decoding.inspect(|d| _ = d.fetch_add(1, Ordering::Relaxed));
        let mut sent = 0usize;
        let mut blocked = Duration::ZERO;
        let began = Instant::now();
        let result = match &input {
            Input::Broken { error, .. } => Err(error.clone()),
            Input::File(path) => {
                let mut send = |window: NetworkWindows| {
                    if stopping() {
                        return Err(crate::Error::Audio("screening stopped".into()));
                    }
                    let t = Instant::now();
                    let r = tx
                        .send(Msg::Window { file, window })
                        .map_err(|_| crate::Error::Audio("screening stopped".into()));
                    blocked += t.elapsed();
                    sent += 1;
                    r
                };
                // A decoder bug must cost one row, not the run.
                guarded("decoder", || read_windows(path, info, &mut send))
                    .map_err(|e| e.to_string())
            }
        };
        // The vocal stage, on files that decoded and held a signal.
        let vocal_began = Instant::now();
        let vocals = match (vocals, &result, &input) {
            (Some(stage), Ok(summary), Input::File(path)) if summary.windows > 0 && !stopping() => {
                Some(guarded("vocal stage", || stage.analyze(path)).map_err(|e| e.to_string()))
            }
            _ => None,
        };
        let vocal_time = vocal_began.elapsed();
        decoding.inspect(|d| _ = d.fetch_sub(1, Ordering::Relaxed));
        if stopping() {
            // Dropped part-way (or finished as the stop came): no row; resume redoes it.
            left.dropped.fetch_add(1, Ordering::Relaxed);
            note_unstarted();
            return;
        }
        let decode_time = began.elapsed().saturating_sub(blocked + vocal_time);
        let done = Msg::Done {
            file,
            path,
            sent,
            result,
            decode_time,
            vocals,
            vocal_time,
        };
        if tx.send(done).is_err() {
            return;
        }
    }
}

/// `work()`, with a panic turned into an error naming `what` crashed: a bug must cost one row,
/// not the run.
fn guarded<T>(what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(crate::Error::Audio(format!("{what} crashed: {why}")))
    })
}

struct Aggregator<'a> {
    scorer: &'a dyn Scorer,
    opts: &'a ScreenOptions,
    on_row: &'a mut dyn FnMut(Row) -> Result<()>,
    files: HashMap<usize, FileState>,
    /// With `ordered`: finished rows waiting for earlier inputs, and the next index to write.
    held: BTreeMap<usize, Row>,
    next_out: usize,
    summary: Summary,
    /// Returns scored batch buffers to the batcher.
    recycle: SyncSender<Vec<Vec<f32>>>,
}

impl Aggregator<'_> {
    /// Stage 3: score each batch, record each finished decode, write rows as files complete.
    ///
    /// Two batches stay in flight: when batch k + 1 arrives it is submitted, then batch k is
    /// advanced (a cascade queues its deferred members, behind k + 1) and batch k − 1
    /// collected, so the device always has queued work while the host waits and writes rows
    /// (on CUDA the next upload also overlaps the current kernels). When nothing is waiting,
    /// the oldest batch in flight is collected at once, so rows are never held back.
    fn consume(&mut self, rx: Receiver<Stage>) -> Result<()> {
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        loop {
            let stage = if !in_flight.is_empty() {
                match rx.try_recv() {
                    Ok(stage) => stage,
                    Err(TryRecvError::Empty) => {
                        let oldest = in_flight.pop_front().expect("checked above");
                        self.collect(oldest)?;
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(stage) => stage,
                    Err(_) => break,
                }
            };
            match stage {
                Stage::Batch { inputs, meta } => {
                    let next = self.submit(&inputs, meta);
                    let _ = self.recycle.try_send(inputs);
                    if let Some(previous) = in_flight.pop_back() {
                        let advanced = self.advance(previous);
                        in_flight.push_back(advanced);
                    }
                    in_flight.push_back(next);
                    if in_flight.len() > IN_FLIGHT {
                        let oldest = in_flight.pop_front().expect("more than two");
                        self.collect(oldest)?;
                    }
                }
                Stage::Done(Msg::Done {
                    file,
                    path,
                    sent,
                    result,
                    decode_time,
                    vocals,
                    vocal_time,
                }) => {
                    self.summary.decode_time += decode_time;
                    self.summary.vocal_time += vocal_time;
                    if let Some(Ok(f)) = &vocals {
                        self.summary.separated_s += f.separated_s;
                    }
                    let state = self.files.entry(file).or_default();
                    state.done = true;
                    state.sent = sent;
                    state.path = path;
                    state.vocals = vocals;
                    match result {
                        Ok(summary) => state.summary = Some(summary),
                        Err(e) => state.error = Some(e),
                    }
                    self.try_finish(file)?;
                }
                Stage::Done(Msg::Window { .. }) => unreachable!("the batcher batches windows"),
            }
        }
        for batch in in_flight {
            self.collect(batch)?;
        }
        Ok(())
    }

    /// Queue a batch on the device; a failure is kept and reported on its files' rows.
    fn submit(&mut self, inputs: &[Vec<f32>], meta: Vec<(usize, u64, u64)>) -> InFlight {
        let t = Instant::now();
        let inputs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let submitted = self.scorer.submit(&inputs, meta.len());
        self.summary.device_time += t.elapsed();
        InFlight { submitted, meta }
    }

    /// [`Scorer::advance`] a batch in flight; a failure is kept, as submit's.
    fn advance(&mut self, batch: InFlight) -> InFlight {
        let t = Instant::now();
        let submitted = batch.submitted.and_then(|s| self.scorer.advance(s));
        self.summary.device_time += t.elapsed();
        InFlight {
            submitted,
            meta: batch.meta,
        }
    }

    /// Wait for a queued batch, fold its scores into its files, and write finished rows.
    fn collect(&mut self, batch: InFlight) -> Result<()> {
        let InFlight { submitted, meta } = batch;
        let meta = meta.as_slice();
        let count = meta.len();
        let t = Instant::now();
        let scores = submitted
            .and_then(|s| self.scorer.collect(s))
            .and_then(|s| {
                if s.windows.len() == count {
                    Ok(s)
                } else {
                    Err(crate::Error::backend(
                        self.scorer.backend_name(),
                        format!("returned {} scores for {count} windows", s.windows.len()),
                    ))
                }
            });
        self.summary.device_time += t.elapsed();
        let keep_segments = self.opts.segments;
        for (i, &(file, start, end)) in meta.iter().enumerate() {
            let state = self.files.entry(file).or_default();
            state.scored += 1;
            match &scores {
                // A NaN would pass as "bona fide" (NaN >= threshold is false): a model whose
                // arithmetic overflows fails the file instead.
                Ok(s) if !s.windows[i].is_finite() => {
                    let at = start as f64 / self.scorer.info().sample_rate as f64;
                    state.error.get_or_insert_with(|| {
                        format!(
                            "the model gave a non-finite score ({}) for the window at {at:.2} s: \
                             its arithmetic overflows f32 on this audio (is the model file sound?)",
                            s.windows[i]
                        )
                    });
                }
                Ok(s) => {
                    let score = s.windows[i];
                    state.cascade_skipped += usize::from(s.skipped(i));
                    if let Some(rule) = &self.opts.segment_rule {
                        let run = state
                            .run
                            .get_or_insert_with(|| StrongestRun::new(rule.windows));
                        run.push(start, end, score);
                    }
                    state.sum += score as f64;
                    state.max = if state.scored == 1 {
                        score
                    } else {
                        state.max.max(score)
                    };
                    if keep_segments {
                        let members = s.members.get(i).cloned().unwrap_or_default();
                        state.segments.push((start, end, score, members));
                    }
                }
                Err(e) => {
                    state
                        .error
                        .get_or_insert_with(|| format!("scoring failed: {e}"));
                }
            }
        }
        let mut touched: Vec<usize> = meta.iter().map(|m| m.0).collect();
        touched.dedup();
        for file in touched {
            self.try_finish(file)?;
        }
        Ok(())
    }

    /// Write the file's row once its decoder is done and every window it sent is scored.
    /// With `ordered`, write the rows still held back: the inputs before them were dropped by
    /// a stop and will have no row.
    fn flush_held(&mut self) -> Result<()> {
        for (_, row) in std::mem::take(&mut self.held) {
            (self.on_row)(row)?;
        }
        Ok(())
    }

    fn try_finish(&mut self, file: usize) -> Result<()> {
        let ready = self
            .files
            .get(&file)
            .is_some_and(|s| s.done && s.scored == s.sent);
        if !ready {
            return Ok(());
        }
        let state = self.files.remove(&file).expect("checked above");
        let row = self.make_row(state);
        self.summary.files += 1;
        if row.error.is_some() {
            self.summary.failed += 1;
        } else {
            self.summary.audio_seconds += row.duration_s.unwrap_or(0.0);
            if row.verdict == Some(Verdict::Synthetic) {
                self.summary.flagged += 1;
            }
            if row.verdict == Some(Verdict::NoSignal) {
                self.summary.no_signal += 1;
            }
            if let (Some(v), Some(t)) = (row.vocal_score, row.vocal_threshold)
                && v >= t
            {
                self.summary.vocal_flagged += 1;
            }
        }
        if !self.opts.ordered {
            return (self.on_row)(row);
        }
        self.held.insert(file, row);
        while let Some(row) = self.held.remove(&self.next_out) {
            self.next_out += 1;
            (self.on_row)(row)?;
        }
        Ok(())
    }

    /// The vocal stage's finding into the row: its fields, and a voice judged synthetic flags
    /// the file. The file score becomes the larger of the music score and the vocal score
    /// mapped onto the file threshold's scale ([`vocal_on_file_scale`]), so a score ranking
    /// (EER, ROC) sees the voice too and `score >= threshold` still means `synthetic`.
    fn apply_vocals(&self, row: &mut Row, finding: std::result::Result<VocalFinding, String>) {
        let Some(stage) = &self.opts.vocals else {
            return;
        };
        let finding = match finding {
            Ok(f) => f,
            Err(e) => {
                row.warnings
                    .push(format!("vocal stage failed, music verdict only: {e}"));
                return;
            }
        };
        row.vocal_share = Some(finding.share);
        row.vocal_score = finding.score;
        row.vocal_start_s = finding.start_s;
        row.vocal_end_s = finding.end_s;
        let Some(vocal) = finding.score else { return };
        let vocal_threshold = stage.0.settings().threshold;
        let mapped = vocal_on_file_scale(vocal, vocal_threshold, self.opts.threshold);
        if let Some(score) = row.score.as_mut() {
            *score = score.max(mapped);
        }
        if vocal >= vocal_threshold {
            row.verdict = Some(Verdict::Synthetic);
        }
    }

    fn make_row(&self, state: FileState) -> Row {
        let info = self.scorer.info();
        let mut row = Row {
            path: state.path.to_string_lossy().into_owned(),
            path_hex: path_hex(&state.path),
            score: None,
            verdict: None,
            threshold: Some(self.opts.threshold),
            max_window_score: None,
            mean_window_score: None,
            windows: None,
            cascade_skipped: None,
            segment_score: None,
            segment_start_s: None,
            segment_end_s: None,
            // Written on every row, like `threshold`, so a report says how it was decided.
            segment_threshold: self.opts.segment_rule.as_ref().map(|r| r.threshold),
            vocal_share: None,
            vocal_score: None,
            vocal_start_s: None,
            vocal_end_s: None,
            vocal_threshold: self.opts.vocals.as_ref().map(|v| v.0.settings().threshold),
            duration_s: None,
            sample_rate: None,
            channels: None,
            codec: None,
            container: None,
            model: info.id.clone(),
            backend: self.scorer.backend_name().to_string(),
            error: state.error,
            warnings: Vec::new(),
            segments: None,
        };
        let mut no_signal = false;
        if let Some(s) = state.summary {
            no_signal = s.windows == 0 && s.silent_windows > 0;
            row.duration_s = Some(s.duration_s);
            row.sample_rate = Some(s.info.sample_rate);
            row.channels = Some(s.info.channels);
            row.codec = Some(s.info.codec);
            row.container = Some(s.info.container);
            row.warnings = s.warnings;
        }
        if row.error.is_none() && no_signal {
            row.verdict = Some(Verdict::NoSignal);
            row.windows = Some(0);
            return row;
        }
        if row.error.is_some() || state.scored == 0 {
            row.error
                .get_or_insert_with(|| "no windows were scored".into());
            return row;
        }
        let mean = (state.sum / state.scored as f64) as f32;
        let score = match info.aggregation {
            Aggregation::Mean => mean,
            Aggregation::Max => state.max,
        };
        row.score = Some(score);
        row.verdict = Some(Verdict::of_score(score, self.opts.threshold));
        let rate = info.sample_rate as f64;
        if let (Some(rule), Some(run)) = (
            &self.opts.segment_rule,
            state.run.as_ref().and_then(StrongestRun::best),
        ) {
            row.segment_score = Some(run.score);
            row.segment_start_s = Some(run.start as f64 / rate);
            row.segment_end_s = Some(run.end as f64 / rate);
            if run.score >= rule.threshold {
                row.verdict = Some(Verdict::Synthetic);
            }
        }
        if let Some(vocals) = state.vocals {
            self.apply_vocals(&mut row, vocals);
        }
        row.max_window_score = Some(state.max);
        row.mean_window_score = Some(mean);
        row.windows = Some(state.scored);
        row.cascade_skipped = info.cascade.then_some(state.cascade_skipped);
        if self.opts.segments {
            row.segments = Some(
                state
                    .segments
                    .into_iter()
                    .map(|(start, end, score, members)| Segment {
                        start_s: start as f64 / rate,
                        end_s: end as f64 / rate,
                        score,
                        members: (!members.is_empty()).then_some(members),
                    })
                    .collect(),
            );
        }
        row
    }
}

/// A vocal score `v` on the file score's scale: piecewise linear, `vocal_threshold` onto
/// `file_threshold`, 0 onto 0 and 1 onto 1, so the order of vocal scores and which side of
/// the threshold they lie on are both kept.
pub fn vocal_on_file_scale(v: f32, vocal_threshold: f32, file_threshold: f32) -> f32 {
    let (tv, tf) = (vocal_threshold.clamp(1e-6, 1.0 - 1e-6), file_threshold);
    if v < tv {
        v / tv * tf
    } else {
        tf + (v - tv) / (1.0 - tv) * (1.0 - tf)
    }
    .clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Explanation, Scores};
    use std::sync::mpsc::Sender;

    /// A scorer that records the order of its calls ("S2": batch 2 submitted, "A", "C":
    /// advanced, collected); a batch's number is its first sample. With `collected`, it also
    /// says which batch it collected.
    struct Recorder {
        info: DetectorInfo,
        calls: Mutex<Vec<String>>,
        collected: Option<Mutex<Sender<usize>>>,
    }

    impl Recorder {
        fn new(collected: Option<Sender<usize>>) -> Self {
            let info = crate::model::load("music-cnn").unwrap().info();
            Recorder {
                info,
                calls: Mutex::new(Vec::new()),
                collected: collected.map(Mutex::new),
            }
        }
        fn log(&self, call: char, batch: usize) {
            self.calls.lock().unwrap().push(format!("{call}{batch}"));
        }
    }

    impl Scorer for Recorder {
        fn backend_name(&self) -> &'static str {
            "recorder"
        }
        fn tensors_on_host(&self) -> bool {
            true
        }
        fn info(&self) -> &DetectorInfo {
            &self.info
        }
        fn submit(&self, inputs: &[&[f32]], count: usize) -> Result<Submitted> {
            let batch = inputs[0][0] as usize;
            self.log('S', batch);
            Ok(Submitted(Box::new((batch, count))))
        }
        fn advance(&self, submitted: Submitted) -> Result<Submitted> {
            let &(batch, _) = submitted.0.downcast_ref::<(usize, usize)>().unwrap();
            self.log('A', batch);
            Ok(submitted)
        }
        fn collect(&self, submitted: Submitted) -> Result<Scores> {
            let (batch, count) = *submitted.0.downcast::<(usize, usize)>().unwrap();
            self.log('C', batch);
            if let Some(tx) = &self.collected {
                tx.lock().unwrap().send(batch).unwrap();
            }
            Ok(Scores {
                windows: vec![0.5; count],
                members: Vec::new(),
            })
        }
        fn explain(&self, _window: &[f32], _bands: usize) -> Result<Explanation> {
            unreachable!("not explained here")
        }
    }

    fn batch(k: usize) -> Stage {
        Stage::Batch {
            inputs: vec![vec![k as f32; 4]],
            meta: vec![(k, 0, 4)],
        }
    }

    /// The scorer's calls as `consume` makes them from `rx`.
    fn consume(scorer: &Recorder, rx: Receiver<Stage>) -> Vec<String> {
        let opts = ScreenOptions {
            batch: 1,
            decoders: 1,
            threshold: 0.5,
            segment_rule: None,
            segments: false,
            ordered: false,
            stop: None,
            decoding: None,
            vocals: None,
        };
        let (recycle, _recycled) = sync_channel(16);
        let mut on_row = |_row: Row| Ok(());
        let mut agg = Aggregator {
            scorer,
            opts: &opts,
            on_row: &mut on_row,
            files: HashMap::new(),
            held: BTreeMap::new(),
            next_out: 0,
            summary: Summary::default(),
            recycle,
        };
        agg.consume(rx).unwrap();
        scorer.calls.lock().unwrap().clone()
    }

    /// Batches waiting back to back: batch k is advanced only after k + 1 is submitted (a
    /// cascade's deferred work queues behind it) and collected only after k + 2 is, so two
    /// stay in flight; the last ones are collected when the input ends.
    #[test]
    fn two_batches_stay_in_flight() {
        let scorer = Recorder::new(None);
        let (tx, rx) = sync_channel(8);
        for k in 0..5 {
            tx.send(batch(k)).unwrap();
        }
        drop(tx);
        let calls = consume(&scorer, rx);
        let want = "S0 S1 A0 S2 A1 C0 S3 A2 C1 S4 A3 C2 C3 C4";
        assert_eq!(calls.join(" "), want);
    }

    /// A batch with none behind it is collected at once: rows are never held back waiting
    /// for more input.
    #[test]
    fn a_batch_alone_is_collected_at_once() {
        let (collected_tx, collected) = std::sync::mpsc::channel();
        let scorer = Recorder::new(Some(collected_tx));
        let (tx, rx) = sync_channel(1);
        let calls = std::thread::scope(|s| {
            s.spawn(move || {
                for k in 0..3 {
                    tx.send(batch(k)).unwrap();
                    assert_eq!(collected.recv().unwrap(), k);
                }
            });
            consume(&scorer, rx)
        });
        assert_eq!(calls.join(" "), "S0 C0 S1 C1 S2 C2");
    }
}
