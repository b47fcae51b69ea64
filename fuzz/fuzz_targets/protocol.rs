//! Protocol readers on arbitrary text: `eval`'s In-the-Wild, ASVspoof 2019 and CSV readers, in
//! each format and in auto-detection, must return trials or a line-numbered error, never panic.

#![no_main]

#[path = "common.rs"]
mod common;

use deepscreen::eval::protocol::{self, ProtocolFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch_with("protocol", data);
    let base = std::path::Path::new("/audio");
    for format in [
        ProtocolFormat::Auto,
        ProtocolFormat::InTheWild,
        ProtocolFormat::Asvspoof2019,
        ProtocolFormat::Csv,
    ] {
        match protocol::read(&path, format, Some(base)) {
            Ok(trials) => {
                for t in trials {
                    assert!(t.path.starts_with(base) || t.path.is_absolute());
                    assert!(!t.spoof || !t.attack.is_empty());
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
