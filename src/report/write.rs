//! Writing rows: JSON Lines (serde) or CSV (the columns of [`CSV_HEADER`]), each row flushed.

use std::io::Write;

use super::{CSV_HEADER, Format, Row};

pub enum ReportWriter {
    Jsonl(Box<dyn Write + Send>),
    Csv(Box<csv::Writer<Box<dyn Write + Send>>>),
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl ReportWriter {
    /// `header`: write the CSV header (not when appending to an existing report).
    pub fn new(out: Box<dyn Write + Send>, format: Format, header: bool) -> std::io::Result<Self> {
        Ok(match format {
            Format::Jsonl => ReportWriter::Jsonl(out),
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                if header {
                    w.write_record(CSV_HEADER)?;
                    w.flush()?;
                }
                ReportWriter::Csv(Box::new(w))
            }
        })
    }

    pub fn write(&mut self, row: &Row) -> std::io::Result<()> {
        match self {
            ReportWriter::Jsonl(out) => {
                serde_json::to_writer(&mut *out, row)?;
                out.write_all(b"\n")?;
                out.flush()
            }
            ReportWriter::Csv(w) => {
                let segments = match &row.segments {
                    Some(s) => serde_json::to_string(s)?,
                    None => String::new(),
                };
                w.write_record([
                    row.path.clone(),
                    opt(&row.score),
                    opt(&row.verdict),
                    opt(&row.threshold),
                    opt(&row.max_window_score),
                    opt(&row.mean_window_score),
                    opt(&row.windows),
                    opt(&row.duration_s),
                    opt(&row.sample_rate),
                    opt(&row.channels),
                    opt(&row.codec),
                    opt(&row.container),
                    row.model.clone(),
                    row.backend.clone(),
                    opt(&row.error),
                    row.warnings.join("; "),
                    segments,
                    opt(&row.path_hex),
                    opt(&row.cascade_skipped),
                    opt(&row.segment_score),
                    opt(&row.segment_start_s),
                    opt(&row.segment_end_s),
                    opt(&row.segment_threshold),
                    opt(&row.vocal_share),
                    opt(&row.vocal_score),
                    opt(&row.vocal_start_s),
                    opt(&row.vocal_end_s),
                    opt(&row.vocal_threshold),
                ])?;
                w.flush()
            }
        }
    }
}
