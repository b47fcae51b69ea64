//! Small text helpers for messages and pages.

/// "1 file", "3 files".
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
