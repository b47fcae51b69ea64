//! Writes a synthetic catalog for memory and throughput measurements: many short files and a
//! few very long ones (16-bit WAV, tones plus noise), as BENCHMARKS.md describes.
//!
//!     cargo run --release --example make_catalog -- DIR [SHORT_COUNT] [LONG_COUNT] [LONG_MINUTES]

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "synthetic-catalog".into()));
    let short: usize = args.next().map_or(Ok(2000), |s| s.parse())?;
    let long: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let minutes: f64 = args.next().map_or(Ok(60.0), |s| s.parse())?;
    std::fs::create_dir_all(&dir)?;
    let write = |name: String, rate: u32, seconds: f64, freq: f64| -> Result<(), hound::Error> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.join(name), spec)?;
        let mut noise = 12345u32;
        for i in 0..(seconds * rate as f64) as u64 {
            noise = noise.wrapping_mul(1664525).wrapping_add(1013904223);
            let n = (noise >> 16) as f64 / 65536.0 - 0.5;
            let v = 0.3 * (std::f64::consts::TAU * freq * i as f64 / rate as f64).sin() + 0.05 * n;
            let s = (v * 32767.0) as i16;
            w.write_sample(s)?;
            w.write_sample(s)?;
        }
        w.finalize()
    };
    for i in 0..short {
        write(
            format!("short{i:05}.wav"),
            44100,
            2.0 + (i % 5) as f64,
            200.0 + (i % 300) as f64,
        )?;
    }
    for i in 0..long {
        write(
            format!("long{i}.wav"),
            44100,
            minutes * 60.0,
            330.0 + 50.0 * i as f64,
        )?;
    }
    println!(
        "{}: {short} short files (2-6 s) and {long} files of {minutes} min, 44.1 kHz stereo",
        dir.display()
    );
    Ok(())
}
