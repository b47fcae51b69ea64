//! Turning the command line's paths and `--files-from` lists into the files to screen.
//! Directory walks never fail as a whole: an unreadable entry or a symlink loop becomes an
//! input that carries its error, so it still gets a row.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::shard::Shard;
use crate::{Error, Result};

/// Extensions picked up when walking a directory (case-insensitive). Files named explicitly
/// are screened whatever their extension.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "mp3", "ogg", "oga", "m4a", "mp4", "m4b", "aac", "alac", "caf", "aif",
    "aiff", "aifc", "mka", "mkv", "webm", "opus",
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

/// Whether `a` and `b` name the same existing file (an output that would overwrite an input).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// A stream of inputs; nothing is listed ahead of need, so a manifest of millions of paths or
/// a huge directory tree costs memory for one entry at a time.
pub type Inputs = Box<dyn Iterator<Item = Input> + Send>;

/// Inputs from command-line paths, then from `--files-from` (one path per line, `-` = stdin).
/// Directories (on the command line or in the list) are walked recursively by extension.
pub fn stream(paths: Vec<PathBuf>, files_from: Option<&str>) -> Result<Inputs> {
    walk(paths, files_from, true)
}

/// [`stream`]; `warn`: say when a directory holds no audio file (the run does; a count
/// beside it does not, or the warning would come twice).
fn walk(paths: Vec<PathBuf>, files_from: Option<&str>, warn: bool) -> Result<Inputs> {
    let listed: Inputs = match files_from {
        None => Box::new(std::iter::empty()),
        Some(source) => {
            let reader: Box<dyn BufRead + Send> = if source == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                let file = std::fs::File::open(source).map_err(|e| Error::Io {
                    path: source.into(),
                    cause: e,
                })?;
                if file.metadata().is_ok_and(|m| m.is_dir()) {
                    return Err(Error::Io {
                        path: source.into(),
                        cause: std::io::Error::new(
                            std::io::ErrorKind::IsADirectory,
                            "--files-from wants a list of paths, this is a directory \
                             (to screen a directory, give it as a path)",
                        ),
                    });
                }
                Box::new(std::io::BufReader::new(file))
            };
            let source = PathBuf::from(source);
            // A read error ends the list (one error row): retrying the same read would fail
            // forever.
            let mut failed = false;
            let lines = reader.split(b'\n').take_while(move |line| {
                let go = !failed;
                failed |= line.is_err();
                go
            });
            Box::new(lines.flat_map(move |line| -> Inputs {
                match line {
                    Ok(line) => match listed_path(line) {
                        Some(path) => expand_one(path, warn),
                        None => Box::new(std::iter::empty()),
                    },
                    Err(e) => Box::new(std::iter::once(Input::Broken {
                        path: source.clone(),
                        error: format!("cannot read the list: {e}"),
                    })),
                }
            }))
        }
    };
    Ok(Box::new(
        paths
            .into_iter()
            .flat_map(move |p| expand_one(p, warn))
            .chain(listed),
    ))
}

/// One path: a file as it is, a directory walked (symlinks followed safely, sorted by name).
fn expand_one(path: PathBuf, warn: bool) -> Inputs {
    if !path.is_dir() {
        return Box::new(std::iter::once(Input::File(path)));
    }
    let walk = walkdir::WalkDir::new(&path)
        .follow_links(true)
        .sort_by_file_name();
    let root = path.clone();
    let entries = walk.into_iter().filter_map(move |entry| match entry {
        Ok(e) if e.file_type().is_file() && has_audio_extension(e.path()) => {
            Some(Input::File(e.into_path()))
        }
        Ok(_) => None,
        Err(e) => {
            let at = e.path().unwrap_or(&root).to_path_buf();
            let error = match e.loop_ancestor() {
                Some(a) => format!("symbolic link loop back to {}; not followed", a.display()),
                None => match e.io_error() {
                    Some(io) => format!("cannot list: {io}"),
                    None => format!("cannot list: {e}"),
                },
            };
            Some(Input::Broken { path: at, error })
        }
    });
    Box::new(WarnIfEmpty {
        inner: Box::new(entries),
        dir: path,
        found: !warn,
    })
}

/// Passes a directory's inputs through and, if there were none, says so once (a wrong path
/// is the usual cause).
struct WarnIfEmpty {
    inner: Inputs,
    dir: PathBuf,
    found: bool,
}

impl Iterator for WarnIfEmpty {
    type Item = Input;
    fn next(&mut self) -> Option<Input> {
        let next = self.inner.next();
        if next.is_some() {
            self.found = true;
        } else if !self.found {
            self.found = true;
            eprintln!(
                "deepscreen: warning: no audio files under {} (extensions: {})",
                self.dir.display(),
                AUDIO_EXTENSIONS.join(" ")
            );
        }
        next
    }
}

/// How many inputs [`stream`] will give in `shard`, counted by walking them as the run does:
/// the progress bar's total, counted in a thread beside the run (a walk costs metadata reads,
/// far less than decoding). None for a list on standard input, which only the run may read.
pub fn count(paths: Vec<PathBuf>, files_from: Option<&str>, shard: Option<Shard>) -> Option<u64> {
    if files_from == Some("-") {
        return None;
    }
    let inputs = walk(paths, files_from, false).ok()?;
    Some(
        inputs
            .filter(|i| shard.is_none_or(|s| s.contains(i.path())))
            .count() as u64,
    )
}

/// The path on one line of a `--files-from` list (a trailing CR dropped); None for a blank line.
fn listed_path(mut line: Vec<u8>) -> Option<PathBuf> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    (!line.is_empty()).then(|| path_from_bytes(line))
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
