//! The report file as a journal: rows are appended and flushed one by one (a killed process
//! loses at most the row being written), synced to disk at least every `SYNC_EVERY`, and
//! `--resume` reads back which inputs already have a row, cutting off a torn last line first.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::report::Format;
use crate::{Error, Result};

const SYNC_EVERY: Duration = Duration::from_secs(2);

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an existing report holds.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Paths (as written in rows) that already have a row.
    pub done: HashSet<String>,
    /// Bytes of a torn last line that were cut off.
    pub repaired_bytes: u64,
    /// Whether the file already has content (so a CSV header is not written again).
    pub has_content: bool,
}

/// Read an existing report for `--resume`: cut a torn last line, collect the finished paths.
/// A missing file is an empty report.
pub fn resume(path: &Path, format: Format) -> Result<Resumed> {
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
    file.rewind().map_err(io(path))?;
    let mut done = HashSet::new();
    match format {
        Format::Jsonl => {
            for (i, line) in BufReader::new(&file).lines().enumerate() {
                let line = line.map_err(io(path))?;
                if line.trim().is_empty() {
                    continue;
                }
                let row: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
                    Error::Audio(format!(
                        "cannot resume: line {} of {} is not a JSON report row ({e})",
                        i + 1,
                        path.display()
                    ))
                })?;
                let p = row["path"].as_str().ok_or_else(|| {
                    Error::Audio(format!(
                        "cannot resume: line {} of {} has no path",
                        i + 1,
                        path.display()
                    ))
                })?;
                done.insert(p.to_string());
            }
        }
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(BufReader::new(&file));
            for (i, record) in reader.records().enumerate() {
                let record = record.map_err(|e| {
                    Error::Audio(format!(
                        "cannot resume: record {} of {} ({e})",
                        i + 1,
                        path.display()
                    ))
                })?;
                if let Some(p) = record.get(0) {
                    done.insert(p.to_string());
                }
            }
        }
    }
    Ok(Resumed {
        done,
        repaired_bytes,
        has_content: complete > 0,
    })
}

/// Append-only report file that syncs its data to disk at least every `SYNC_EVERY` and on drop.
pub struct DurableFile {
    file: File,
    last_sync: Instant,
}

impl DurableFile {
    /// Open `path` for appending (`append`) or replace it.
    pub fn open(path: &Path, append: bool) -> Result<Self> {
        let file = if append {
            OpenOptions::new().create(true).append(true).open(path)
        } else {
            File::create(path)
        }
        .map_err(io(path))?;
        Ok(DurableFile {
            file,
            last_sync: Instant::now(),
        })
    }
}

impl Write for DurableFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }
}

impl Drop for DurableFile {
    fn drop(&mut self) {
        let _ = self.file.sync_data();
    }
}
