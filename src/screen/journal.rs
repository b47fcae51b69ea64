//! The report file as a journal: rows are appended and flushed one by one (a killed process
//! loses at most the row being written), synced to disk at least every `SYNC_EVERY`, locked
//! against a second run writing it, and read back by `--resume`, which cuts off a torn last
//! line and refuses a report that another format, model or threshold wrote.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::report::{CSV_HEADER, Entry, Format, Raw, RowReader};
use crate::{Error, Result};

const SYNC_EVERY: Duration = Duration::from_secs(2);

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// What a resumed report must have been written with.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub format: Format,
    pub model: &'a str,
    pub threshold: f32,
    /// The segment rule's threshold (None: no rule).
    pub segment_threshold: Option<f32>,
    /// The vocal stage's threshold; None: the stage off.
    pub vocal_threshold: Option<f32>,
}

/// What an existing report holds.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Paths (exact bytes: `report::row_path_bytes`) that already have a row.
    pub done: HashSet<Vec<u8>>,
    /// Error rows kept in the report (they count towards the run's failures).
    pub failed: usize,
    /// Error rows removed so their inputs are screened again (`--retry-failed`).
    pub retried: usize,
    /// Bytes of a torn last line that were cut off.
    pub repaired_bytes: u64,
    /// Whether the file already has content (so a CSV header is not written again).
    pub has_content: bool,
}

/// Read an existing report for `--resume` (the caller holds its lock): cut a torn last line,
/// check it was written in `expected`'s format, model and threshold, collect the finished
/// paths. With `retry_failed`, error rows are dropped from the file (rewritten atomically) so
/// their inputs are screened again. A missing file is an empty report.
pub fn resume(path: &Path, expected: Expected, retry_failed: bool) -> Result<Resumed> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Resumed::default()),
        Err(e) => return Err(io(path)(e)),
    };
    let len = file.metadata().map_err(io(path))?.len();
    // Everything after the last newline is a row that was being written when the run died.
    let mut complete = 0u64;
    {
        let mut reader = BufReader::new(&mut file);
        let mut line = Vec::new();
        let mut offset = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io(path))?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            if line.last() == Some(&b'\n') {
                complete = offset;
            }
        }
    }
    let repaired_bytes = len - complete;
    if repaired_bytes > 0 {
        file.set_len(complete).map_err(io(path))?;
        file.sync_data().map_err(io(path))?;
    }
    let refuse = |why: String| Error::Report(format!("cannot resume {}: {why}", path.display()));
    match Format::detect(path)? {
        None => {
            return Ok(Resumed {
                repaired_bytes,
                ..Resumed::default()
            });
        }
        Some(found) if found != expected.format => {
            return Err(refuse(format!(
                "it is a {} report and this run writes {} (give the same --format, or another -o)",
                found.name(),
                expected.format.name()
            )));
        }
        Some(Format::Csv) if crate::report::is_legacy_csv(path)? => {
            return Err(refuse(
                "it was written by an older deepscreen, whose CSV lacks the cascade_skipped, \
                 segment_* or vocal_* columns, and rows of two widths cannot share a file (`deepscreen merge` rewrites \
                 it with this version's columns: merge it to a new -o, and resume that)"
                    .to_string(),
            ));
        }
        Some(_) => {}
    }
    file.rewind().map_err(io(path))?;
    let mut resumed = Resumed {
        repaired_bytes,
        has_content: complete > 0,
        ..Resumed::default()
    };
    // Rows are checked and counted as they are read: nothing per row is kept but its path.
    let mut any_failed = false;
    let handle = file.try_clone().map_err(io(path))?;
    for entry in RowReader::new(handle, path, expected.format).map_err(resume_error)? {
        let Entry { row, at, .. } = entry.map_err(resume_error)?;
        if row.model != expected.model {
            let model = match crate::model::embedded_name_of(&row.model) {
                Some(name) => format!("--model {name}"),
                None => format!("--model and the file of model {:?}", row.model),
            };
            return Err(refuse(format!(
                "{at} was written by model {:?}, this run uses {:?} (resume with {model}, \
                 or write another -o)",
                row.model, expected.model
            )));
        }
        if let Some(t) = row.threshold
            && (t - expected.threshold).abs() > 1e-6
        {
            return Err(refuse(format!(
                "{at} was decided at threshold {t}, this run uses {} (resume with \
                 --threshold {t}, or write another -o)",
                expected.threshold
            )));
        }
        // An optional threshold (a rule or stage that may be off): the same value, or off in
        // both. Rows of before the segment rule have none (like a run with it off).
        let same = |a: Option<f32>, b: Option<f32>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6,
            (a, b) => a.is_none() && b.is_none(),
        };
        let shown = |t: Option<f32>| t.map_or("off".to_string(), |t| t.to_string());
        if !same(row.segment_threshold, expected.segment_threshold) {
            return Err(refuse(format!(
                "{at} was decided with segment threshold {}, this run uses {} (resume with \
                 --segment-threshold {}, or write another -o)",
                shown(row.segment_threshold),
                shown(expected.segment_threshold),
                shown(row.segment_threshold)
            )));
        }
        // Rows of before the vocal stage have none (like a run with it off).
        if !same(row.vocal_threshold, expected.vocal_threshold) {
            let resume_with = match row.vocal_threshold {
                Some(t) => format!("--vocals on --vocal-threshold {t}"),
                None => "--vocals off".to_string(),
            };
            return Err(refuse(format!(
                "{at} was decided with the vocal stage's threshold {}, this run uses {} \
                 (resume with {resume_with}, or write another -o)",
                shown(row.vocal_threshold),
                shown(expected.vocal_threshold),
            )));
        }
        let failed = row.error.is_some();
        any_failed |= failed;
        if !(failed && retry_failed) {
            resumed.failed += usize::from(failed);
            resumed.done.insert(row.path_bytes());
        }
    }
    if retry_failed && any_failed {
        resumed.retried = drop_error_rows(path, &file, expected.format)?;
    }
    Ok(resumed)
}

/// A reader's error (which names the report) as a refusal to resume.
fn resume_error(e: Error) -> Error {
    match e {
        Error::Report(what) => Error::Report(format!("cannot resume {what}")),
        other => other,
    }
}

/// Rewrite the report without its error rows: a new file beside it, synced, renamed over it.
fn drop_error_rows(path: &Path, file: &File, format: Format) -> Result<usize> {
    let mut handle = file.try_clone().map_err(io(path))?;
    handle.rewind().map_err(io(path))?;
    let csv_err = |e: csv::Error| Error::Report(format!("{}: {e}", path.display()));
    let mut jsonl = String::new();
    let mut csv = csv::Writer::from_writer(Vec::new());
    if format == Format::Csv {
        csv.write_record(CSV_HEADER).map_err(csv_err)?;
    }
    let mut dropped = 0;
    for entry in RowReader::new(handle, path, format)? {
        let entry = entry?;
        if entry.row.error.is_some() {
            dropped += 1;
            continue;
        }
        match entry.raw {
            Raw::Line(line) => {
                jsonl.push_str(&line);
                jsonl.push('\n');
            }
            Raw::Record(record) => csv.write_record(&record).map_err(csv_err)?,
        }
    }
    let kept = match format {
        Format::Jsonl => jsonl.into_bytes(),
        Format::Csv => csv
            .into_inner()
            .map_err(|e| Error::Report(format!("{}: {}", path.display(), e.error())))?,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".retry-tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut out = File::create(&tmp).map_err(io(&tmp))?;
    out.write_all(&kept).map_err(io(&tmp))?;
    out.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(dropped)
}

/// What [`DurableFile::open`] does with a report that is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Append to it (`--resume`).
    Append,
    /// Replace it (`--force`): the new report is written beside it and renamed over it when
    /// the run ends ([`Replacement::commit`]); until then the old one is untouched.
    Replace,
    /// Refuse, unless it is empty: a report is never lost to a rerun that forgot `--resume`.
    Refuse,
}

/// The report being written: appended to, synced at least every `SYNC_EVERY` and on drop, and
/// (a regular file) exclusively locked while open. Pipes, FIFOs and devices (`-o /dev/null`,
/// `/dev/stdout`) are written as they are: no lock, no sync (they refuse fsync).
pub struct DurableFile {
    file: File,
    regular: bool,
    last_sync: Instant,
    /// While a replacement is staged: the old report, kept locked so that no other run starts
    /// on it before the new one is in place.
    _old: Option<File>,
}

/// A `--force` run's new report, staged beside the old one (`.NAME.replacing`). [`commit`]
/// renames it over the old one; dropped uncommitted (a fatal error), it is removed and the old
/// report stays as it was. A run killed outright leaves it behind, the old report untouched.
///
/// [`commit`]: Replacement::commit
pub struct Replacement {
    staged: PathBuf,
    target: PathBuf,
    file: File,
    committed: bool,
}

impl Replacement {
    /// The staged report goes to disk, then takes the old one's name (atomic on one file
    /// system), and the directory entry is synced.
    pub fn commit(mut self) -> Result<()> {
        self.file.sync_all().map_err(io(&self.staged))?;
        std::fs::rename(&self.staged, &self.target).map_err(io(&self.target))?;
        self.committed = true;
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.staged);
        }
    }
}

impl DurableFile {
    /// Open `path` for appending or replacing, as `existing` says, after taking its lock: a
    /// second run on the same report stops here, before touching a byte of it. A symbolic link
    /// to a regular file is refused (the file it names would be written; `/dev/stdout` and
    /// other links to pipes and devices are fine).
    pub fn open(path: &Path, existing: Existing) -> Result<(Self, Option<Replacement>)> {
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return Err(Error::Report(format!(
                "{} is a symbolic link to a file: give -o the file's own path (a report is never \
                 written through a link)",
                path.display()
            )));
        }
        let regular = match std::fs::metadata(path) {
            Ok(m) => m.is_file(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(io(path)(e)),
        };
        if !regular {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io(path))?;
            return Ok((
                DurableFile {
                    file,
                    regular,
                    last_sync: Instant::now(),
                    _old: None,
                },
                None,
            ));
        }
        // Not truncated on open: only once the lock is ours.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io(path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = lock_holder(&file)
                    .map(|pid| format!(" (process {pid})"))
                    .unwrap_or_default();
                return Err(Error::Report(format!(
                    "{} is being written by another deepscreen run{holder}: wait for it to end, \
                     or write to another -o",
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io(path)(e)),
        }
        let len = file.metadata().map_err(io(path))?.len();
        match existing {
            Existing::Append => {}
            Existing::Refuse if len > 0 => {
                return Err(Error::Report(format!(
                    "{} already exists ({len} bytes): continue that report with --resume, \
                     replace it with --force, or write to another -o",
                    path.display()
                )));
            }
            Existing::Replace if len > 0 => return Self::stage_replacement(path, file),
            Existing::Replace | Existing::Refuse => file.set_len(0).map_err(io(path))?,
        }
        let durable = DurableFile {
            file,
            regular,
            last_sync: Instant::now(),
            _old: None,
        };
        Ok((durable, None))
    }

    /// `--force` over a report: write `.NAME.replacing` beside it (a stale one from a run that
    /// was killed is emptied), locked like a report, while `old` stays locked.
    fn stage_replacement(path: &Path, old: File) -> Result<(Self, Option<Replacement>)> {
        let mut name = std::ffi::OsString::from(".");
        name.push(path.file_name().unwrap_or_default());
        name.push(".replacing");
        let staged = path.with_file_name(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&staged)
            .map_err(io(&staged))?;
        file.try_lock()
            .map_err(|e| Error::Report(format!("cannot lock {}: {e}", staged.display())))?;
        let replacement = Replacement {
            staged: staged.clone(),
            target: path.to_path_buf(),
            file: file.try_clone().map_err(io(&staged))?,
            committed: false,
        };
        let durable = DurableFile {
            file,
            regular: true,
            last_sync: Instant::now(),
            _old: Some(old),
        };
        Ok((durable, Some(replacement)))
    }

    /// Whether this is a regular file (pipes and devices cannot be resumed).
    pub fn is_regular(&self) -> bool {
        self.regular
    }
}

/// The process holding a lock on `file`, from /proc/locks (Linux; elsewhere unknown).
#[cfg(not(unix))]
fn lock_holder(_file: &File) -> Option<u32> {
    None
}

/// The process holding a lock on `file`, from /proc/locks (Linux; elsewhere unknown).
#[cfg(unix)]
fn lock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let inode = file.metadata().ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|f| *f == "FLOCK")?;
        let pid = fields.get(at + 3)?.parse().ok()?;
        let ino: u64 = fields.get(at + 4)?.rsplit(':').next()?.parse().ok()?;
        (ino == inode).then_some(pid)
    })
}

impl Write for DurableFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if self.regular && self.last_sync.elapsed() >= SYNC_EVERY {
            self.file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }
}

impl Drop for DurableFile {
    fn drop(&mut self) {
        if self.regular {
            let _ = self.file.sync_data();
        }
    }
}
