//! The model file: one `.safetensors` = f32 tensors + the JSON config in the metadata under
//! the key `deepscreen`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::{Dtype, SafeTensors};

use super::Detector;
use super::config::{
    FileConfig, FusionConfig, FusionMember, LayerConfig, METADATA_KEY, ModelConfig, SharedTensors,
    WindowConfig,
};
use super::fusion::{FusedMember, FusionSpec};
use super::geometry::{BN_PARTS, check_format, plan, window_samples};
use super::network::ModelSpec;
use super::tensor::HostTensor;
use crate::{Error, Result};

/// Parse and validate a model file, a network or a fusion. `source` names the file in error
/// messages.
pub fn load_detector(bytes: &[u8], source: &str) -> Result<Detector> {
    load_detector_in(bytes, source, None)
}

/// As [`load_detector`]; `folder` is where the bytes' file lies (None: not a file, e.g.
/// embedded), where a fusion's `file` members are read.
fn load_detector_in(bytes: &[u8], source: &str, folder: Option<&Path>) -> Result<Detector> {
    match read_config(bytes, source)? {
        FileConfig::Network(config) => {
            let tensors = read_tensors(bytes, source, "")?;
            Ok(Detector::Network(build(config, tensors, source)?))
        }
        FileConfig::Fusion(config) => Ok(Detector::Fusion(
            load_fusion(config, folder).map_err(|e| Error::model(format!("{source}: {e}")))?,
        )),
    }
}

/// Parse and validate a network's model file (a fused model is refused).
pub fn load_bytes(bytes: &[u8], source: &str) -> Result<ModelSpec> {
    load_detector(bytes, source)?.into_network()
}

/// Validate a model: its shared tensors added, `config` checked against the tensors.
fn build(
    mut config: ModelConfig,
    mut tensors: BTreeMap<String, HostTensor>,
    source: &str,
) -> Result<ModelSpec> {
    if let Some(shared) = config.shared_tensors.take() {
        take_shared(&shared, &config, &mut tensors)
            .map_err(|e| Error::model(format!("{source}: {e}")))?;
    }
    ModelSpec::new(config, tensors).map_err(|e| Error::model(format!("{source}: {}", bare(&e))))
}

/// An error's message without its "model: " prefix (for messages that name the file first).
fn bare(e: &Error) -> String {
    e.to_string().trim_start_matches("model: ").to_string()
}

/// A fused model: its members loaded (embedded networks, or files in `folder`) and planned for
/// its windows.
fn load_fusion(
    config: FusionConfig,
    folder: Option<&Path>,
) -> std::result::Result<FusionSpec, String> {
    check_format(&config.format, config.version).map_err(|e| bare(&e))?;
    let (window_samples, hop_samples, min_samples) =
        window_samples(&config.window, config.sample_rate).map_err(|e| bare(&e))?;
    if config.fusion.members.is_empty() {
        return Err("a fusion needs at least one member".into());
    }
    if !config.fusion.bias.is_finite() {
        return Err("the fusion bias is not finite".into());
    }
    if let Some(cascade) = &config.fusion.cascade {
        check_cascade(cascade, &config.fusion.members)?;
    }
    if let Some(rule) = &config.segment_rule {
        rule.check()?;
    }
    let members = config
        .fusion
        .members
        .iter()
        .map(|m| load_member(m, &config.window, folder))
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(FusionSpec {
        config,
        members,
        window_samples,
        hop_samples,
        min_samples,
    })
}

/// A cascade defers some members, not all, each named once among them, on a finite band.
fn check_cascade(
    cascade: &super::config::Cascade,
    members: &[FusionMember],
) -> std::result::Result<(), String> {
    for (k, name) in cascade.deferred.iter().enumerate() {
        if !members.iter().any(|m| &m.model == name) {
            return Err(format!(
                "the cascade defers {name:?}, which is not a member"
            ));
        }
        if cascade.deferred[..k].contains(name) {
            return Err(format!("the cascade defers {name:?} twice"));
        }
    }
    if cascade.deferred.is_empty() || cascade.deferred.len() >= members.len() {
        return Err("a cascade defers at least one member and keeps at least one".into());
    }
    let numbers = [
        cascade.lo,
        cascade.hi,
        cascade.fill_below,
        cascade.fill_above,
    ];
    if numbers.iter().any(|x| !x.is_finite()) || cascade.lo > cascade.hi {
        return Err(format!(
            "the cascade's band [{}, {}] or fills are not finite, or lo > hi",
            cascade.lo, cascade.hi
        ));
    }
    Ok(())
}

/// A fused model's member: an embedded network, or the network file it names (relative to
/// `folder`, the fused model's), planned for the fused model's windows (each member takes them
/// at its own rate).
fn load_member(
    member: &FusionMember,
    window: &WindowConfig,
    folder: Option<&Path>,
) -> std::result::Result<FusedMember, String> {
    let read;
    let (bytes, source) = match &member.file {
        None => (
            super::embedded(&member.model).ok_or_else(|| {
                format!(
                    "it fuses the embedded model {:?}, which this build lacks",
                    member.model
                )
            })?,
            member.model.clone(),
        ),
        Some(file) => {
            let folder = folder.ok_or_else(|| {
                format!(
                    "its member {:?} is the file {file:?}, but a fused model names member files \
                     only when it is itself a file",
                    member.model
                )
            })?;
            let path = folder.join(file);
            read = std::fs::read(&path).map_err(|e| {
                format!(
                    "its member {:?} is the file {}, which cannot be read: {e}",
                    member.model,
                    path.display()
                )
            })?;
            (read.as_slice(), path.display().to_string())
        }
    };
    if !member.weight.is_finite() {
        return Err(format!("the weight of {:?} is not finite", member.model));
    }
    let FileConfig::Network(mut config) = read_config(bytes, &source).map_err(|e| e.to_string())?
    else {
        return Err(format!(
            "it fuses {source:?}, itself a fused model (fusions do not nest)"
        ));
    };
    // Its weights, threshold and cascade were fitted on that network: another in its place
    // would score silently differently.
    if member.file.is_some() && config.id != member.model {
        return Err(format!(
            "its member {:?} is the file {source}, which holds the model {:?}",
            member.model, config.id
        ));
    }
    let tensors = read_tensors(bytes, &source, "").map_err(|e| e.to_string())?;
    config.window = window.clone();
    let spec = build(config, tensors, &source).map_err(|e| e.to_string())?;
    spec.facts.require_classifier().map_err(|e| e.to_string())?;
    Ok(FusedMember {
        spec,
        weight: member.weight,
    })
}

/// The JSON config text in a deepscreen file's safetensors metadata (no tensor is read).
pub(super) fn config_json(bytes: &[u8], source: &str) -> Result<String> {
    let fail = |msg: String| Error::model(format!("{source}: {msg}"));
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| fail(format!("not a valid safetensors file ({e})")))?;
    metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .cloned()
        .ok_or_else(|| {
            fail(format!(
                "no deepscreen config: the safetensors metadata has no {METADATA_KEY:?} key"
            ))
        })
}

/// The config of a model file alone (from the safetensors header; no tensor is read).
pub fn read_config(bytes: &[u8], source: &str) -> Result<FileConfig> {
    let fail = |msg: String| Error::model(format!("{source}: {msg}"));
    let json = config_json(bytes, source)?;
    let invalid = |e: serde_json::Error| fail(format!("invalid config JSON: {e}"));
    let value: serde_json::Value = serde_json::from_str(&json).map_err(invalid)?;
    let is_fusion = value.get("fusion").is_some();
    if is_fusion && value.get("layers").is_some() {
        return Err(fail(
            "a fused model in the old layout, which copies a member's network (its config has \
             both `fusion` and `layers`): write it again with training/fuse.py"
                .into(),
        ));
    }
    Ok(if is_fusion {
        FileConfig::Fusion(serde_json::from_value(value).map_err(invalid)?)
    } else {
        FileConfig::Network(serde_json::from_value(value).map_err(invalid)?)
    })
}

/// The config and the tensors of a network's file, not yet validated against each other.
pub fn read(bytes: &[u8], source: &str) -> Result<(ModelConfig, BTreeMap<String, HostTensor>)> {
    match read_config(bytes, source)? {
        FileConfig::Network(config) => Ok((config, read_tensors(bytes, source, "")?)),
        FileConfig::Fusion(_) => Err(Error::model(format!(
            "{source}: a fused model, not a network: it holds no tensors"
        ))),
    }
}

/// The tensors of a model file whose names start with `prefix` (F16 tensors widened to f32:
/// weights may be stored as F16 to halve the file); the others are not converted.
pub(super) fn read_tensors(
    bytes: &[u8],
    source: &str,
    prefix: &str,
) -> Result<BTreeMap<String, HostTensor>> {
    let fail = |msg: String| Error::model(format!("{source}: {msg}"));
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| fail(format!("not a valid safetensors file ({e})")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        if !name.starts_with(prefix) {
            continue;
        }
        let data = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(fail(format!(
                    "tensor {name:?} has dtype {other:?}; deepscreen models store F32 or F16"
                )));
            }
        };
        tensors.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(tensors)
}

/// Add the tensors a model shares with an embedded one (see [`SharedTensors`]): only those
/// tensors are read from the embedded file, straight from the binary's bytes.
fn take_shared(
    shared: &SharedTensors,
    config: &ModelConfig,
    tensors: &mut BTreeMap<String, HostTensor>,
) -> std::result::Result<(), String> {
    let bytes = super::embedded(&shared.from).ok_or_else(|| {
        format!(
            "its tensors {:?}* come from the embedded model {:?}, which this build lacks",
            shared.prefix, shared.from
        )
    })?;
    let source = match read_config(bytes, &shared.from).map_err(|e| e.to_string())? {
        FileConfig::Network(c) => Some(c),
        FileConfig::Fusion(_) => None,
    };
    // The same encoder and front-end; what each head reads from it (`read`) may differ.
    let geometry = |c: &ModelConfig| {
        c.encoder
            .as_ref()
            .map(|e| (e.kind, e.width, e.heads, e.layers, e.max_positions))
    };
    let same = source.as_ref().is_some_and(|s| {
        s.shared_tensors.is_none()
            && geometry(s) == geometry(config)
            && s.frontend == config.frontend
            && s.sample_rate == config.sample_rate
    });
    if !same {
        return Err(format!(
            "the embedded model {:?} has another encoder or front-end (or shares tensors itself)",
            shared.from
        ));
    }
    let from = read_tensors(bytes, &shared.from, &shared.prefix).map_err(|e| e.to_string())?;
    if from.is_empty() {
        return Err(format!(
            "the embedded model {:?} has no tensors {:?}*",
            shared.from, shared.prefix
        ));
    }
    for (name, tensor) in from {
        if tensors.insert(name.clone(), tensor).is_some() {
            return Err(format!(
                "tensor {name:?} is both in the file and shared from {:?}",
                shared.from
            ));
        }
    }
    Ok(())
}

/// Parse and validate a model file on disk (a network or a fusion).
pub fn load_path(path: &Path) -> Result<Detector> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    load_detector_in(&bytes, &path.display().to_string(), Some(folder))
}

/// Serialise a config and its tensors into a model file (what `training/export.py` writes).
pub fn to_bytes(config: &ModelConfig, tensors: &BTreeMap<String, HostTensor>) -> Result<Vec<u8>> {
    let json = serde_json::to_string(config).map_err(|e| Error::model(e.to_string()))?;
    serialize(json, tensors)
}

/// A safetensors file of `tensors` (f32) with `json` as the config in its metadata.
pub(crate) fn serialize(json: String, tensors: &BTreeMap<String, HostTensor>) -> Result<Vec<u8>> {
    let raw: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), bytes, t.shape.clone())
        })
        .collect();
    let mut views = Vec::with_capacity(raw.len());
    for (name, bytes, shape) in &raw {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::model(format!("tensor {name:?}: {e}")))?;
        views.push((name.as_str(), view));
    }
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::model(e.to_string()))
}

/// A fused model's file: its config in the metadata, no tensors (what `training/fuse.py`
/// writes).
pub fn fusion_to_bytes(config: &FusionConfig) -> Result<Vec<u8>> {
    let json = serde_json::to_string(config).map_err(|e| Error::model(e.to_string()))?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    let none: Vec<(&str, safetensors::tensor::TensorView)> = Vec::new();
    safetensors::serialize(none, Some(metadata)).map_err(|e| Error::model(e.to_string()))
}

/// A model file for `config` with random weights (see [`random_tensors`]).
pub fn random_model_bytes(config: &ModelConfig, seed: u64) -> Result<Vec<u8>> {
    to_bytes(config, &random_tensors(config, seed)?)
}

/// Random weights for every tensor the config needs (He-scaled, batch-norm statistics
/// plausible). For tests, benchmarks and the demo only: such a model detects nothing.
pub fn random_tensors(config: &ModelConfig, seed: u64) -> Result<BTreeMap<String, HostTensor>> {
    let plan = plan(config)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let bn_names: Vec<String> = config
        .layers
        .iter()
        .filter_map(|l| match l {
            LayerConfig::Conv2d {
                name,
                batchnorm: true,
                ..
            } => Some(format!("{name}.bn.")),
            LayerConfig::BatchNorm { name, .. } => Some(format!("{name}.")),
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    for (name, shape) in plan.tensors {
        let n: usize = shape.iter().product();
        let part = bn_names.iter().find_map(|p| name.strip_prefix(p.as_str()));
        let data: Vec<f32> = match (part, name.as_str()) {
            (Some("running_var"), _) | (_, "frontend.std") => {
                (0..n).map(|_| rng.random_range(0.5..2.0)).collect()
            }
            (Some("weight"), _) => (0..n).map(|_| rng.random_range(0.5..1.5)).collect(),
            (Some(p), _) if BN_PARTS.contains(&p) => {
                (0..n).map(|_| rng.random_range(-0.3..0.3)).collect()
            }
            (_, "frontend.filterbank") => (0..n).map(|_| rng.random_range(0.0..0.1)).collect(),
            _ => {
                // fan-in = product of all dims but the first (conv and linear alike)
                let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
                let bound = (6.0 / fan_in as f32).sqrt();
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            }
        };
        out.insert(name, HostTensor { shape, data });
    }
    Ok(out)
}
