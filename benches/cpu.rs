//! CPU backend benchmarks: front-end ops, the heaviest classifier op, and whole forward passes
//! of the two reference architectures (random weights; speed does not depend on the values).
//!
//!     cargo bench --bench cpu
//!
//! Throughput is reported in windows/s; ×real-time = windows/s × hop seconds (see BENCHMARKS.md).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use deepscreen::backend::cpu::CpuBackend;
use deepscreen::backend::{Activation, Backend, Conv2dParams, LogSpec, Projection};
use deepscreen::model::{Model, ModelConfig, file, presets};
use std::time::Duration;

/// Same allocator as the binary (see src/main.rs), so the figures match what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 32;

fn signal(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32 * 0.0137).sin() + (i as f32 * 0.291).sin()) * 0.3)
        .collect()
}

fn bind(config: &ModelConfig) -> (CpuBackend, Model<CpuBackend>) {
    let backend = CpuBackend::new();
    let tensors = file::random_tensors(config, 1).unwrap();
    let spec = file::load_bytes(&file::to_bytes(config, &tensors).unwrap(), "bench").unwrap();
    let model = Model::new(&backend, spec).unwrap();
    (backend, model)
}

fn frontend(c: &mut Criterion) {
    let mut g = c.benchmark_group("frontend");
    g.throughput(Throughput::Elements(BATCH as u64));
    for config in [presets::speech_lcnn("speech"), presets::music_cnn("music")] {
        let (be, model) = bind(&config);
        let len = model.spec.window_samples;
        let x = be.upload(&signal(BATCH * len), &[BATCH, len]).unwrap();
        let fe = &model.spec.frontend;
        let window = be.upload(&fe.window.data, &fe.window.shape).unwrap();
        g.bench_function(BenchmarkId::new("stft_power", &config.id), |b| {
            b.iter(|| be.stft_power(&x, &window, &fe.stft).unwrap())
        });
        let power = be.stft_power(&x, &window, &fe.stft).unwrap();
        let log = LogSpec::Ln { eps: 1e-6 };
        match &fe.projection {
            deepscreen::backend::Projection::Matrix(m) => {
                let mt = be.upload(&m.data, &m.shape).unwrap();
                g.bench_function(BenchmarkId::new("filterbank_log", &config.id), |b| {
                    b.iter(|| {
                        be.filterbank_log(&power, Projection::Matrix(&mt), log)
                            .unwrap()
                    })
                });
            }
            deepscreen::backend::Projection::Bins { start, end } => {
                g.bench_function(BenchmarkId::new("filterbank_log", &config.id), |b| {
                    b.iter(|| {
                        be.filterbank_log(
                            &power,
                            Projection::Bins {
                                start: *start,
                                end: *end,
                            },
                            log,
                        )
                        .unwrap()
                    })
                });
            }
        }
        g.bench_function(BenchmarkId::new("features", &config.id), |b| {
            b.iter(|| model.features(&be, &x).unwrap())
        });
    }
    g.finish();
}

fn classifier(c: &mut Criterion) {
    let mut g = c.benchmark_group("classifier");
    g.throughput(Throughput::Elements(BATCH as u64));
    let be = CpuBackend::new();
    // LCNN first layer on 401 frames × 40 cepstra, and a 3×3 16→32 layer of the music CNN.
    for (name, [c_in, h, w], [c_out, k]) in [
        ("conv5x5_1to32_401x40", [1, 401, 40], [32, 5]),
        ("conv3x3_16to32_107x186", [16, 107, 186], [32, 3]),
    ] {
        let x = be
            .upload(&signal(BATCH * c_in * h * w), &[BATCH, c_in, h, w])
            .unwrap();
        let wt = be
            .upload(&signal(c_out * c_in * k * k), &[c_out, c_in, k, k])
            .unwrap();
        let bias = be.upload(&vec![0.1; c_out], &[c_out]).unwrap();
        let p = Conv2dParams {
            stride: [1, 1],
            padding: [k / 2, k / 2],
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                be.conv2d(&x, &wt, Some(&bias), &p, Activation::Relu)
                    .unwrap()
            })
        });
    }
    for config in [presets::speech_lcnn("speech"), presets::music_cnn("music")] {
        let (be, model) = bind(&config);
        let len = model.spec.window_samples;
        let x = be.upload(&signal(BATCH * len), &[BATCH, len]).unwrap();
        let features = model.features(&be, &x).unwrap();
        g.bench_function(BenchmarkId::new("classify", &config.id), |b| {
            b.iter(|| model.classify(&be, features.clone()).unwrap())
        });
    }
    g.finish();
}

fn forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(BATCH as u64));
    for config in [presets::speech_lcnn("speech"), presets::music_cnn("music")] {
        let (be, model) = bind(&config);
        let windows = signal(BATCH * model.spec.window_samples);
        g.bench_function(BenchmarkId::new("scores", &config.id), |b| {
            b.iter(|| model.scores(&be, &windows, BATCH).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = frontend, classifier, forward
}
criterion_main!(benches);
