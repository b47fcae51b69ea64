//! Parsed arguments into the library's plain job structs.

use std::path::{Path, PathBuf};

use deepscreen::bench::BenchJob;
use deepscreen::eval::command::EvalJob;
use deepscreen::report::Format;
use deepscreen::review::ReviewJob;
use deepscreen::screen::command::ScreenJob;
use deepscreen::screen::merge::MergeJob;

use super::{BenchArgs, EvalArgs, MergeArgs, ReviewArgs, ScreenArgs};

/// `-o -` is standard output, as in most tools (`-o ./-` names a file called `-`).
fn is_standard_output(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The report file `-o` names, if any (none for standard output).
fn report_file(output: Option<PathBuf>) -> Option<PathBuf> {
    output.filter(|path| !is_standard_output(path))
}

impl TryFrom<ScreenArgs> for ScreenJob {
    type Error = String;
    fn try_from(a: ScreenArgs) -> Result<Self, String> {
        let to_stdout = a.output.as_deref().is_some_and(is_standard_output);
        let needs_file = [
            (a.resume, "--resume continues a report file"),
            (a.force, "--force replaces a report file"),
            (
                a.html.is_some(),
                "--html builds its page from the report file",
            ),
        ];
        if let Some((_, what)) = needs_file.iter().find(|(given, _)| to_stdout && *given) {
            return Err(format!(
                "{what}, and -o - writes to standard output: give -o FILE"
            ));
        }
        let output = report_file(a.output);
        let format = Format::for_output(a.format, output.as_deref())?;
        Ok(ScreenJob {
            paths: a.paths,
            files_from: a.files_from,
            model: a.model,
            exact: a.exact,
            backend: a.backend,
            batch: a.batch.map(|b| b as usize),
            threads: a.threads,
            format,
            output,
            threshold: a.threshold,
            segment_threshold: a.segment_threshold,
            segments: a.segments,
            progress: !a.no_progress,
            resume: a.resume,
            force: a.force,
            retry_failed: a.retry_failed,
            shard: a.shard,
            ordered: a.ordered,
            vocals: a.vocals.choice(),
        })
    }
}

impl From<BenchArgs> for BenchJob {
    fn from(a: BenchArgs) -> Self {
        BenchJob {
            catalog: a.catalog,
            model: a.model,
            exact: a.exact,
            repeats: a.repeats,
            backends: a.backends,
            threads: a.threads,
            batch: a.batch,
        }
    }
}

impl From<EvalArgs> for EvalJob {
    fn from(a: EvalArgs) -> Self {
        EvalJob {
            protocol: a.protocol,
            format: a.format,
            audio_dir: a.audio_dir,
            model: a.model,
            vocals: a.vocals.choice(),
            exact: a.exact,
            backend: a.backend,
            batch: a.batch,
            scores: a.scores,
            plot: a.plot,
            det: a.det,
            json: a.json,
        }
    }
}

impl From<MergeArgs> for MergeJob {
    fn from(a: MergeArgs) -> Self {
        MergeJob {
            reports: a.reports,
            output: report_file(a.output),
            format: a.format,
            expect: a.expect,
        }
    }
}

impl From<ReviewArgs> for ReviewJob {
    fn from(a: ReviewArgs) -> Self {
        ReviewJob {
            top: a.top,
            embed_audio: a.embed_audio,
            model: a.model,
            backend: a.backend,
            rescreen: !a.no_rescreen,
            bands: a.bands as usize,
            protocol: a.protocol,
            protocol_format: a.protocol_format,
            audio_dir: a.audio_dir,
            ..ReviewJob::new(a.report, a.output)
        }
    }
}
