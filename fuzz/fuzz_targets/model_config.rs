//! Model configs on arbitrary JSON: a config that parses gets random weights of its planned
//! shapes (`random_model_bytes`); the result must load or be refused with an error, and a model
//! that loads must bind and score. This reaches the config validation and the forward pass
//! far faster than mutating whole safetensors files.

#![no_main]

#[path = "common.rs"]
mod common;

use deepscreen::model::ModelConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = serde_json::from_slice::<ModelConfig>(data) else {
        return;
    };
    // Random weights for big models cost memory and time and add no coverage.
    if common::params(&config).is_none_or(|p| p > common::MAX_PARAMS) {
        return;
    }
    let Ok(bytes) = deepscreen::model::file::random_model_bytes(&config, 7) else {
        return;
    };
    if let Ok(spec) = deepscreen::model::file::load_detector(&bytes, "fuzz") {
        common::score_once(spec);
    }
});
