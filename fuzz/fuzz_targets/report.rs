//! Report parsing on arbitrary bytes (torn, hand-edited or foreign JSONL/CSV): the report
//! reader (`review`'s), `merge` and `--resume` must read or refuse, never panic. Properties:
//! - a report `merge` accepts merges again, from its own output, to the same rows;
//! - `--resume` leaves a file that a second `--resume` reads to the same set of finished paths,
//!   with nothing left to repair.

#![no_main]

#[path = "common.rs"]
mod common;

use deepscreen::report::Format;
use deepscreen::screen::journal::{self, Expected};
use deepscreen::screen::merge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch_with("report", data);
    if let Ok(Some(reader)) = deepscreen::report::RowReader::open(&path) {
        reader.for_each(drop);
    }

    let inputs = [path.clone()];
    if let Ok(format) = merge::detect_format(&inputs, None) {
        let mut out = Vec::new();
        if let Ok(first) = merge::merge(&inputs, format, &mut out, None) {
            let again = common::scratch_with("merged", &out);
            let mut out2 = Vec::new();
            let second = merge::merge(&[again], format, &mut out2, None)
                .expect("merge refuses its own output");
            assert_eq!(first.rows, second.rows, "merge of a merge changed the rows");
            assert_eq!(out, out2, "merge is not idempotent");
        }
    }

    // --resume rewrites the file (a torn last line is cut; error rows with --retry-failed).
    for (format, retry) in [(Format::Jsonl, false), (Format::Csv, true)] {
        let path = common::scratch_with("report", data);
        let expected = Expected {
            format,
            model: "tiny", // the seed reports' model (fuzz/make_seeds.py)
            threshold: 0.5,
            segment_threshold: None, // the seed reports predate the segment rule
            vocal_threshold: None,   // and the vocal stage
        };
        if let Ok(first) = journal::resume(&path, expected, retry) {
            let second = journal::resume(&path, expected, retry)
                .expect("a report --resume accepted is refused the second time");
            assert_eq!(second.repaired_bytes, 0, "second resume repaired again");
            assert_eq!(second.retried, 0, "second resume retried again");
            assert_eq!(first.done, second.done, "finished paths changed");
        }
    }
});
