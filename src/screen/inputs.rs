//! Turning the command line's paths and `--files-from` lists into the files to screen.
//! Directory walks never fail as a whole: an unreadable entry or a symlink loop becomes an
//! input that carries its error, so it still gets a row.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Extensions picked up when walking a directory (case-insensitive). Files named explicitly
/// are screened whatever their extension.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "mp3", "ogg", "oga", "m4a", "mp4", "m4b", "aac", "alac", "caf", "aif",
    "aiff", "aifc", "mka", "mkv", "webm",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    File(PathBuf),
    /// Something that could not even be listed; reported as a failed row.
    Broken {
        path: PathBuf,
        error: String,
    },
}

impl Input {
    pub fn path(&self) -> &Path {
        match self {
            Input::File(p) | Input::Broken { path: p, .. } => p,
        }
    }
}

pub fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Expand `paths` (files, or directories walked recursively, following symlinks safely).
pub fn expand(paths: &[PathBuf], out: &mut Vec<Input>) {
    for path in paths {
        if !path.is_dir() {
            out.push(Input::File(path.clone()));
            continue;
        }
        let before = out.len();
        let walk = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name();
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_file() && has_audio_extension(e.path()) => {
                    out.push(Input::File(e.into_path()))
                }
                Ok(_) => {}
                Err(e) => {
                    let at = e.path().unwrap_or(path).to_path_buf();
                    let error = match e.loop_ancestor() {
                        Some(a) => {
                            format!("symbolic link loop back to {}; not followed", a.display())
                        }
                        None => match e.io_error() {
                            Some(io) => format!("cannot list: {io}"),
                            None => format!("cannot list: {e}"),
                        },
                    };
                    out.push(Input::Broken { path: at, error });
                }
            }
        }
        if out.len() == before {
            eprintln!(
                "deepscreen: warning: no audio files under {} (extensions: {})",
                path.display(),
                AUDIO_EXTENSIONS.join(" ")
            );
        }
    }
}

/// Read one path per line from `source` (`-` = standard input). Empty lines are skipped;
/// bytes are taken as they are, so non-UTF-8 names survive.
pub fn read_list(source: &str, out: &mut Vec<PathBuf>) -> Result<()> {
    let reader: Box<dyn BufRead> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(source).map_err(|e| Error::Io {
            path: source.into(),
            source: e,
        })?;
        Box::new(std::io::BufReader::new(file))
    };
    for line in reader.split(b'\n') {
        let mut line = line.map_err(|e| Error::Io {
            path: source.into(),
            source: e,
        })?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if !line.is_empty() {
            out.push(path_from_bytes(line));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}
