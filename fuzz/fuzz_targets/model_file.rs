//! Model loading on arbitrary bytes: `model::file::load_bytes` (safetensors header, config
//! JSON, tensor shapes and values, shared tensors) must accept or refuse, never panic; a model
//! it accepts must bind and score (see `common::score_once`).

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = deepscreen::model::file::read_config(data, "fuzz");
    match deepscreen::model::file::load_detector(data, "fuzz") {
        Ok(spec) => {
            assert!(
                config.is_ok(),
                "loaded a model whose config alone does not read"
            );
            common::score_once(spec);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
