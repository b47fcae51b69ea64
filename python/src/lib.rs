//! `deepscreen._engine`: the engine's screening pipeline (decode workers, batching, the same
//! rows as `deepscreen screen`) for the Python package in `deepscreen/`. Rows cross as JSON
//! (the report's own serialisation), so Python sees exactly what a report holds. The GIL is
//! released while the engine works.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use deepscreen::backend::BackendKind;
use deepscreen::model::Scorer;
use deepscreen::model::config::SegmentRule;
use deepscreen::screen::command::{self, SegmentThreshold};
use deepscreen::screen::inputs::{self, Input};
use deepscreen::screen::pipeline::{self, ScreenOptions};
use deepscreen::screen::vocals::{VocalChoice, VocalMode};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

fn backend_kind(name: &str) -> PyResult<BackendKind> {
    Ok(match name {
        "auto" => BackendKind::Auto,
        "cpu" => BackendKind::Cpu,
        "wgpu" => BackendKind::Wgpu,
        "cuda" => BackendKind::Cuda,
        other => {
            return Err(PyValueError::new_err(format!(
                "backend must be \"auto\", \"cpu\", \"wgpu\" or \"cuda\", not {other:?}"
            )));
        }
    })
}

fn engine_err(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// What `models()` and `Engine.info()` both say of a detector: id, default threshold, rate,
/// window and aggregation.
fn facts(info: &deepscreen::model::DetectorInfo) -> serde_json::Value {
    serde_json::json!({
        "id": info.id,
        "threshold": info.threshold,
        "sample_rate": info.sample_rate,
        "window_seconds": info.window.seconds,
        "hop_seconds": info.window.hop_seconds,
        "aggregation": info.aggregation,
        "segment_rule": info.segment_rule,
    })
}

/// One detector bound to one backend, shared by every screening it runs.
#[pyclass(frozen, module = "deepscreen._engine")]
struct Engine {
    scorer: Arc<dyn Scorer>,
    batch: usize,
    decoders: usize,
    threshold: f32,
    segment_rule: Option<SegmentRule>,
    /// The vocal stage (voices inside music), when on.
    vocals: Option<pipeline::Vocals>,
}

/// `segment_threshold`: a score, or "off".
#[derive(FromPyObject)]
enum SegmentArg {
    At(f32),
    Word(String),
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (model = "music", backend = "auto", threads = None, batch = None, threshold = None, exact = false, segment_threshold = None, vocals = "auto", vocal_threshold = None))]
    #[allow(clippy::too_many_arguments)] // the Python constructor's keyword arguments
    fn new(
        py: Python<'_>,
        model: &str,
        backend: &str,
        threads: Option<usize>,
        batch: Option<usize>,
        threshold: Option<f32>,
        exact: bool,
        segment_threshold: Option<SegmentArg>,
        vocals: &str,
        vocal_threshold: Option<f32>,
    ) -> PyResult<Self> {
        let vocal_mode = match vocals {
            "auto" => VocalMode::Auto,
            "on" => VocalMode::On,
            "off" => VocalMode::Off,
            other => {
                return Err(PyValueError::new_err(format!(
                    "vocals must be \"auto\", \"on\" or \"off\", not {other:?}"
                )));
            }
        };
        if let Some(t) = vocal_threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(PyValueError::new_err(format!(
                "vocal_threshold must be within [0, 1], not {t}"
            )));
        }
        let kind = backend_kind(backend)?;
        if threads == Some(0) || batch == Some(0) {
            return Err(PyValueError::new_err(
                "threads and batch must be at least 1",
            ));
        }
        if let Some(t) = threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(PyValueError::new_err(format!(
                "threshold must be within [0, 1], not {t}"
            )));
        }
        let segment_choice = match segment_threshold {
            None => None,
            Some(SegmentArg::Word(w)) if w == "off" => Some(SegmentThreshold::Off),
            Some(SegmentArg::At(t)) if (0.0..=1.0).contains(&t) => Some(SegmentThreshold::At(t)),
            Some(_) => {
                return Err(PyValueError::new_err(
                    "segment_threshold must be a score within [0, 1], \"off\" or None",
                ));
            }
        };
        let decoders = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let model = model.to_string();
        py.detach(move || {
            // The CPU backend's compute pool: one per process, like the CLI's (a second
            // Engine keeps the first one's).
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(decoders)
                .build_global();
            let scorer: Arc<dyn Scorer> =
                Arc::from(deepscreen::model::open(&model, kind, exact).map_err(engine_err)?);
            let batch = pipeline::chosen_batch(batch, scorer.as_ref()).map_err(engine_err)?;
            let threshold = threshold.unwrap_or(scorer.info().threshold);
            let segment_rule =
                command::segment_rule(scorer.info(), segment_choice).map_err(engine_err)?;
            let choice = VocalChoice {
                mode: vocal_mode,
                threshold: vocal_threshold,
                ..VocalChoice::default()
            };
            let vocals = choice
                .open(scorer.info().sample_rate, kind)
                .map_err(engine_err)?
                .map(|stage| pipeline::Vocals(Arc::from(stage)));
            Ok(Engine {
                scorer,
                batch,
                decoders,
                threshold,
                segment_rule,
                vocals,
            })
        })
    }

    /// The detector as JSON: id, threshold in use, rate, window, aggregation, backend, batch.
    fn info(&self) -> String {
        let mut facts = facts(self.scorer.info());
        facts["default_threshold"] = facts["threshold"].clone();
        facts["threshold"] = self.threshold.into();
        facts["segment_rule"] = serde_json::to_value(&self.segment_rule).unwrap_or_default();
        facts["vocal_threshold"] = match &self.vocals {
            Some(v) => v.0.settings().threshold.into(),
            None => serde_json::Value::Null,
        };
        facts["backend"] = self.scorer.backend_name().into();
        facts["batch"] = self.batch.into();
        facts["threads"] = self.decoders.into();
        facts.to_string()
    }

    /// Screen `paths` (files or directories, walked as the CLI walks them), skipping those in
    /// `skip`; the rows come as they finish, each as one report row in JSON.
    #[pyo3(signature = (paths, skip = Vec::new(), segments = true))]
    fn screen(&self, paths: Vec<PathBuf>, skip: Vec<PathBuf>, segments: bool) -> PyResult<Rows> {
        let listed = inputs::stream(paths, None).map_err(engine_err)?;
        let skip: std::collections::HashSet<PathBuf> = skip.into_iter().collect();
        let inputs: inputs::Inputs =
            Box::new(listed.filter(move |i: &Input| !skip.contains(i.path())));
        let opts = ScreenOptions {
            batch: self.batch,
            decoders: self.decoders,
            threshold: self.threshold,
            segment_rule: self.segment_rule.clone(),
            segments,
            ordered: true,
            stop: None,
            decoding: None,
            vocals: self.vocals.clone(),
        };
        // A small queue: the engine runs ahead of the reader by a few rows at most.
        let (tx, rx) = sync_channel::<Result<String, String>>(16);
        let scorer = self.scorer.clone();
        std::thread::spawn(move || {
            let result = pipeline::run(inputs, scorer.as_ref(), &opts, &mut |row| {
                let json = serde_json::to_string(&row)
                    .map_err(|e| deepscreen::Error::Report(e.to_string()))?;
                // The reader went away (the iterator was dropped): stop screening.
                tx.send(Ok(json))
                    .map_err(|_| deepscreen::Error::Report("the reader stopped".into()))
            });
            if let Err(e) = result {
                let _ = tx.send(Err(e.to_string()));
            }
        });
        Ok(Rows { rx: Mutex::new(rx) })
    }
}

/// The rows of one `Engine.screen`, in input order.
#[pyclass(module = "deepscreen._engine")]
struct Rows {
    rx: Mutex<Receiver<Result<String, String>>>,
}

#[pymethods]
impl Rows {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let rx = &self.rx;
        // A poisoned lock only means another reader panicked; the receiver is still sound.
        let next = py.detach(|| rx.lock().unwrap_or_else(|p| p.into_inner()).recv().ok());
        match next {
            Some(Ok(json)) => Ok(Some(json)),
            Some(Err(e)) => Err(engine_err(e)),
            None => Ok(None),
        }
    }
}

/// Every backend: whether it can start here, and its device or why not (JSON).
#[pyfunction]
fn devices(py: Python<'_>) -> PyResult<String> {
    py.detach(|| {
        let mut out = Vec::new();
        deepscreen::backend::write_status(&mut out, true).map_err(engine_err)?;
        String::from_utf8(out).map_err(engine_err)
    })
}

/// The embedded models: name, id, default threshold, rate, window, aggregation (JSON).
#[pyfunction]
fn models() -> PyResult<String> {
    let mut list = Vec::new();
    for (name, _) in deepscreen::model::EMBEDDED {
        let mut facts = facts(&deepscreen::model::load(name).map_err(engine_err)?.info());
        facts["name"] = (*name).into();
        facts["default"] = (*name == deepscreen::model::DEFAULT_MODEL).into();
        list.push(facts);
    }
    Ok(serde_json::Value::Array(list).to_string())
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Rows>()?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(models, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
