//! deepscreen: screen audio catalogs for AI-generated (synthetic) speech and music.
//!
//! Data flows one way: decode ([`audio`]) → fixed windows → batches → a [`backend::Backend`]
//! runs the model's front-end and classifier ([`model`]) → per-file rows ([`screen`]).
//! The commands' drivers live with the job they do ([`screen::command`], [`screen::merge`],
//! [`eval::command`], [`bench`]); the binary only parses arguments and maps exit codes.

pub mod audio;
pub mod backend;
pub mod bench;
pub mod error;
pub mod eval;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod report;
pub mod review;
pub mod screen;
pub mod text;

pub use error::{Error, Result};
