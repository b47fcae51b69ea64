//! One error type for the library. Every message names the thing that went wrong
//! (the file, the tensor, the layer) so a user can act on it without a debugger.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file or its config is unusable.
    #[error("model: {0}")]
    Model(String),
    /// A backend could not start or an op got inputs it cannot handle.
    #[error("backend {backend}: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
    /// An audio file could not be read or decoded.
    #[error("{0}")]
    Audio(String),
    /// A report or list could not be read, written or trusted.
    #[error("{0}")]
    Report(String),
    // The OS error is part of the message, not a `source`: anyhow's `{:#}` would print it twice.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

impl Error {
    pub fn model(msg: impl Into<String>) -> Self {
        Error::Model(msg.into())
    }
    pub fn backend(backend: &'static str, msg: impl Into<String>) -> Self {
        Error::Backend {
            backend,
            message: msg.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
