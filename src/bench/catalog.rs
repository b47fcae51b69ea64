//! `bench --catalog DIR`: the whole pipeline (decode, resample, windows, scoring) on a real
//! catalog, per backend and thread count, and decoding alone.

use std::io::Write;
use std::path::Path;

use anyhow::bail;

use super::{BenchJob, backends_to_time};
use crate::model;
use crate::screen::inputs;
use crate::screen::pipeline::{self, ScreenOptions};

pub(super) fn run(job: &BenchJob, catalog: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let model_arg = job.model.as_deref().unwrap_or(model::DEFAULT_MODEL);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = job.threads.clone();
    if threads.is_empty() {
        threads = vec![1, cores];
        threads.dedup();
    }
    let detector = model::load(model_arg)?;
    let detector = if job.exact {
        detector.exact()
    } else {
        detector
    };
    let info = detector.info();
    let list = || inputs::stream(vec![catalog.to_path_buf()], None);
    let files = list()?.count();
    if files == 0 {
        bail!("no audio files under {}", catalog.display());
    }
    writeln!(
        out,
        "catalog {} ({files} files), model {}, batch {}, {cores} cores",
        catalog.display(),
        info.id,
        job.batch.unwrap_or(crate::screen::pipeline::DEFAULT_BATCH)
    )?;
    writeln!(
        out,
        "{:<8} {:>7} {:>9} {:>10} {:>11} {:>12} {:>13} {:>9}",
        "backend",
        "threads",
        "files/s",
        "x realtime",
        "wall s",
        "decode cpu-s",
        "device s",
        "skipped"
    )?;
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build()?;
        let d = pool.install(|| list().map(|l| pipeline::decode_only(l, &info, t.max(1))))?;
        writeln!(
            out,
            "{:<8} {:>7} {:>9.1} {:>10.0} {:>11.2} {:>12.2} {:>13} {:>9}",
            "decode",
            t,
            d.files as f64 / d.elapsed.as_secs_f64(),
            d.realtime_factor(),
            d.elapsed.as_secs_f64(),
            d.decode_time.as_secs_f64(),
            "-",
            "-"
        )?;
    }
    for kind in backends_to_time(&job.backends) {
        let scorer = match model::bind(kind, detector.clone()) {
            Ok(s) => s,
            Err(e) => {
                writeln!(out, "{:<8} unavailable: {e}", kind.name())?;
                continue;
            }
        };
        let batch = crate::screen::pipeline::chosen_batch(job.batch, scorer.as_ref())?;
        for &t in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t.max(1))
                .build()?;
            let opts = ScreenOptions {
                batch,
                decoders: t.max(1),
                threshold: 0.5,
                segment_rule: None,
                segments: false,
                ordered: false,
                stop: None,
                decoding: None,
                vocals: None,
            };
            let (mut windows, mut skipped) = (0, 0);
            let summary = pool.install(|| {
                pipeline::run(list()?, scorer.as_ref(), &opts, &mut |row| {
                    windows += row.windows.unwrap_or(0);
                    skipped += row.cascade_skipped.unwrap_or(0);
                    Ok(())
                })
            })?;
            // The share of windows a fused model's cascade decided without its costly members.
            let skipped = if info.cascade {
                format!("{:.1}%", 100.0 * skipped as f64 / windows.max(1) as f64)
            } else {
                "-".to_string()
            };
            writeln!(
                out,
                "{:<8} {:>7} {:>9.1} {:>10.0} {:>11.2} {:>12.2} {:>13.2} {:>9}",
                scorer.backend_name(),
                t,
                summary.files as f64 / summary.elapsed.as_secs_f64(),
                summary.realtime_factor(),
                summary.elapsed.as_secs_f64(),
                summary.decode_time.as_secs_f64(),
                summary.device_time.as_secs_f64(),
                skipped,
            )?;
        }
    }
    if let Some(mib) = crate::screen::peak_rss_mib() {
        writeln!(out, "peak RSS {mib} MiB")?;
    }
    Ok(())
}
