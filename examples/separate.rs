//! Separates the vocals of a 44.1 kHz WAV with a separator file (issue 35) on a backend, writes
//! them as WAV and prints the time the separation and the vocal-presence test took (medians of
//! `REPEATS` runs) as real-time factors. `training/separator/spleeter.py sdr --engine` compares its output with the PyTorch
//! reference and the true vocal.
//!
//!     cargo run --release --example separate -- MODEL MIX.wav VOCALS.wav [cpu|wgpu|cuda] [REPEATS]
//!
//! MODEL `random-spleeter` times Spleeter's shape with random weights, where the real ones did
//! not travel; MIX `synthetic:SECONDS` is a stereo tone-and-noise signal of that length.

use std::path::PathBuf;
use std::time::Instant;

use clap::ValueEnum;
use deepscreen::backend::{Backend, BackendKind, WithBackend};
use deepscreen::model::separator::{Separator, load};

/// The presence test's sampling: every second segment.
const PRESENCE_EVERY: usize = 2;
/// The presence test's bins: `screen`'s gate (`screen::vocals::GATE_BINS`).
const PRESENCE_BINS: usize = deepscreen::screen::vocals::GATE_BINS;

struct Run {
    model: Vec<u8>,
    channels: Vec<Vec<f32>>,
    repeats: usize,
}

impl WithBackend for Run {
    /// Vocals, median seconds of the separation and of the presence test, backend name.
    type Output = (Vec<Vec<f32>>, f64, f64, &'static str);
    fn run<B: Backend + 'static>(self, backend: B) -> deepscreen::Result<Self::Output> {
        let spec = load(&self.model, "separator")?;
        let separator = Separator::new(&backend, &spec)?;
        let channels: Vec<&[f32]> = self.channels.iter().map(|c| c.as_slice()).collect();
        let (mut times, mut gate) = (Vec::new(), Vec::new());
        let mut vocals = Vec::new();
        for _ in 0..self.repeats.max(1) {
            let t0 = Instant::now();
            vocals = separator.separate(&backend, &channels)?;
            times.push(t0.elapsed().as_secs_f64());
            let t0 = Instant::now();
            separator.vocal_presence(&backend, &channels, PRESENCE_EVERY, PRESENCE_BINS)?;
            gate.push(t0.elapsed().as_secs_f64());
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Ok((vocals, median(times), median(gate), backend.name()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, mix, out, rest @ ..] = args.as_slice() else {
        return Err("usage: separate MODEL MIX.wav VOCALS.wav [cpu|wgpu|cuda] [REPEATS]".into());
    };
    let kind = match rest.first() {
        Some(k) => BackendKind::from_str(k, true)?,
        None => BackendKind::Cpu,
    };
    let repeats = rest.get(1).map_or(Ok(1), |r| r.parse())?;
    let channels = match mix.strip_prefix("synthetic:") {
        Some(seconds) => synthetic(seconds.parse()?),
        None => read_wav(mix)?,
    };
    let seconds = channels[0].len() as f64 / 44100.0;
    let model = match model.as_str() {
        "random-spleeter" => deepscreen::model::separator::random_spleeter_bytes(35)?,
        path => std::fs::read(path)?,
    };
    let run = Run {
        model,
        channels,
        repeats,
    };
    let (vocals, time, gate, backend) = deepscreen::backend::open(kind, run)?;
    println!(
        "{backend}: {seconds:.1} s separated in {time:.3} s (median of {repeats}): {:.1}x real time; \
         vocal presence on every {PRESENCE_EVERY}nd segment {gate:.3} s: {:.1}x real time",
        seconds / time,
        seconds / gate
    );
    let out_spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44100,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(PathBuf::from(out), out_spec)?;
    for (l, r) in vocals[0].iter().zip(&vocals[1]) {
        w.write_sample(*l)?;
        w.write_sample(*r)?;
    }
    w.finalize()?;
    Ok(())
}

/// A 44.1 kHz WAV's channels.
fn read_wav(path: &str) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if spec.sample_rate != 44100 {
        return Err(format!("{path}: {} Hz, the separator takes 44100", spec.sample_rate).into());
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            let ints = reader.samples::<i32>().collect::<Result<Vec<_>, _>>()?;
            ints.into_iter().map(|s| s as f32 * scale).collect()
        }
    };
    let n = spec.channels as usize;
    Ok((0..n)
        .map(|c| samples.iter().skip(c).step_by(n).copied().collect())
        .collect())
}

/// `seconds` of stereo tones over noise at 44.1 kHz.
fn synthetic(seconds: f64) -> Vec<Vec<f32>> {
    let n = (seconds * 44100.0) as usize;
    let mut state = 12345u32;
    [220.0, 330.0]
        .iter()
        .map(|hz| {
            (0..n)
                .map(|i| {
                    state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                    let noise = (state >> 16) as f32 / 65536.0 - 0.5;
                    let t = i as f64 / 44100.0;
                    0.3 * (std::f64::consts::TAU * hz * t).sin() as f32 + 0.05 * noise
                })
                .collect()
        })
        .collect()
}
