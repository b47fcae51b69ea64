//! Backend benchmarks, the same bodies for every backend that starts here (cpu always, wgpu
//! when an adapter exists, CUDA in f32 and TF32 where a GPU is): front-end ops, the heaviest
//! classifier ops, whole forward passes of the two reference architectures, and the Whisper
//! base encoder's ops one by one (random weights; speed does not depend on them).
//!
//!     cargo bench --bench backends                 # everything
//!     cargo bench --bench backends -- forward      # one group
//!
//! Benchmark ids are `group/op/model/backend`. Throughput is in windows/s; ×real-time =
//! windows/s × hop seconds (see BENCHMARKS.md). A GPU timing includes the readback of the
//! result (each iteration ends with a download), as the screening pipeline does.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use deepscreen::backend::cpu::{CpuBackend, Math as CpuMath};
use deepscreen::backend::cuda::{CudaBackend, Math};
use deepscreen::backend::wgpu::WgpuBackend;
use deepscreen::backend::{Activation, Backend, Conv1dParams, Conv2dParams, LogSpec, Projection};
use deepscreen::model::{Model, ModelConfig, ModelSpec, file, presets};
use std::time::Duration;

/// Same allocator as the binary (see src/main.rs), so the figures match what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Windows per batch: 8 keeps the largest activation (the speech LCNN's first conv, 32 × 397 ×
/// 257 floats = 13 MB a window) under the 128 MiB storage-binding limit of common adapters
/// (lavapipe included). Figures in BENCHMARKS.md dated before 2026-11-25 used 16.
const BATCH: usize = 8;

fn signal(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32 * 0.0137).sin() + (i as f32 * 0.291).sin()) * 0.3)
        .collect()
}

/// `config` with random weights, on the host.
fn host_spec(config: &ModelConfig) -> ModelSpec {
    file::load_bytes(&file::random_model_bytes(config, 1).unwrap(), "bench").unwrap()
}

fn bind<B: Backend>(be: &B, config: &ModelConfig) -> Model<B> {
    Model::new(be, host_spec(config)).unwrap()
}

/// Run `f` and wait for the device: downloading the (small) result forces completion.
fn sync<B: Backend>(be: &B, t: B::Tensor) {
    let _ = be.download(&t).unwrap();
}

fn frontend<B: Backend>(c: &mut Criterion, be: &B, label: &str) {
    let mut g = c.benchmark_group("frontend");
    g.throughput(Throughput::Elements(BATCH as u64));
    for config in [presets::speech_lcnn("speech"), presets::music_cnn("music")] {
        let spec = host_spec(&config);
        let id = |op: &str| BenchmarkId::new(op, format!("{}/{}", config.id, label));
        let len = spec.facts.window_samples;
        let x = be.upload(&signal(BATCH * len), &[BATCH, len]).unwrap();
        let fe = &spec.frontend;
        let window = be.upload(&fe.window.data, &fe.window.shape).unwrap();
        g.bench_function(id("stft_power"), |b| {
            b.iter(|| sync(be, be.stft_power(&x, &window, &fe.stft).unwrap()))
        });
        let power = be.stft_power(&x, &window, &fe.stft).unwrap();
        let log = LogSpec::Ln { eps: 1e-6 };
        let matrix = match &fe.projection {
            Projection::Matrix(m) => Some(be.upload(&m.data, &m.shape).unwrap()),
            Projection::Bins { .. } => None,
        };
        let projection = || match (&fe.projection, &matrix) {
            (Projection::Bins { start, end }, _) => Projection::Bins {
                start: *start,
                end: *end,
            },
            (_, Some(m)) => Projection::Matrix(m),
            _ => unreachable!("a matrix projection was uploaded"),
        };
        g.bench_function(id("filterbank_log"), |b| {
            b.iter(|| sync(be, be.filterbank_log(&power, projection(), log).unwrap()))
        });
        let model = Model::new(be, spec.clone()).unwrap();
        g.bench_function(id("features"), |b| {
            b.iter(|| sync(be, model.features(be, &x).unwrap()))
        });
    }
    g.finish();
}

fn classifier<B: Backend>(c: &mut Criterion, be: &B, label: &str) {
    let mut g = c.benchmark_group("classifier");
    g.throughput(Throughput::Elements(BATCH as u64));
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
        let p = Conv2dParams::symmetric([1, 1], [k / 2, k / 2]);
        g.bench_function(BenchmarkId::new(name, label), |b| {
            b.iter(|| {
                sync(
                    be,
                    be.conv2d(&x, &wt, Some(&bias), &p, Activation::Relu)
                        .unwrap(),
                )
            })
        });
    }
    for config in [presets::speech_lcnn("speech"), presets::music_cnn("music")] {
        let model = bind(be, &config);
        let len = model.facts.window_samples;
        let x = be.upload(&signal(BATCH * len), &[BATCH, len]).unwrap();
        let features = model.features(be, &x).unwrap();
        let shape = deepscreen::backend::DeviceTensor::shape(&features).to_vec();
        let host = be.download(&features).unwrap();
        // includes re-uploading the features (the classifier consumes its input tensor)
        g.bench_function(
            BenchmarkId::new("classify", format!("{}/{}", config.id, label)),
            |b| {
                b.iter(|| {
                    sync(
                        be,
                        model
                            .classify(be, be.upload(&host, &shape).unwrap())
                            .unwrap(),
                    )
                })
            },
        );
    }
    g.finish();
}

fn forward<B: Backend>(c: &mut Criterion, be: &B, label: &str) {
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(BATCH as u64));
    for config in [presets::speech_lcnn("speech"), presets::music_cnn("music")] {
        let model = bind(be, &config);
        let windows = signal(BATCH * model.facts.window_samples);
        g.bench_function(
            BenchmarkId::new("scores", format!("{}/{}", config.id, label)),
            |b| b.iter(|| model.scores(be, &windows, BATCH).unwrap()),
        );
    }
    g.finish();
}

/// Values in [-scale, scale) from a small LCG: deterministic, no denormals or overflow.
fn values(len: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1 << 23) as f32 - 1.0) * scale
        })
        .collect()
}

/// Whisper base's encoder ops at the shapes of one batch of 8 windows of 4 s (400 log-mel
/// frames, 200 positions of width 512, 8 heads, MLP 2048): the per-op figures BENCHMARKS.md
/// sets beside CTranslate2's whole encoder. One block runs each op after `layer_norm` once.
fn encoder<B: Backend>(c: &mut Criterion, be: &B, label: &str) {
    const FRAMES: usize = 400;
    const MELS: usize = 80;
    const D: usize = 512;
    const HEADS: usize = 8;
    const MLP: usize = 2048;
    let positions = FRAMES / 2;
    let rows = BATCH * positions;
    let mut g = c.benchmark_group("encoder");
    g.throughput(Throughput::Elements(BATCH as u64));
    let id = |op: &str| BenchmarkId::new(op, format!("whisper-base/{}", label));
    let mut seed = 0;
    let mut tensor = |shape: &[usize], scale: f32| {
        seed += 1;
        let data = values(shape.iter().product(), seed, scale);
        be.upload(&data, shape).unwrap()
    };
    let mel = tensor(&[BATCH, FRAMES, MELS], 1.0);
    let stem1 = (tensor(&[D, MELS, 3], 0.1), tensor(&[D], 0.1));
    let stem1_out = tensor(&[BATCH, FRAMES, D], 1.0);
    let stem2 = (tensor(&[D, D, 3], 0.02), tensor(&[D], 0.1));
    let x = tensor(&[BATCH, positions, D], 1.0);
    let (gamma, beta) = (tensor(&[D], 1.0), tensor(&[D], 0.1));
    let normed = tensor(&[rows, D], 1.0);
    let qkv_weight = (tensor(&[3 * D, D], 0.05), tensor(&[3 * D], 0.1));
    let qkv = tensor(&[BATCH, positions, 3 * D], 1.0);
    let out_weight = (tensor(&[D, D], 0.05), tensor(&[D], 0.1));
    let mlp_in = (tensor(&[MLP, D], 0.05), tensor(&[MLP], 0.1));
    let inner = tensor(&[rows, MLP], 1.0);
    let mlp_out = (tensor(&[D, MLP], 0.02), tensor(&[D], 0.1));
    let same = Conv1dParams {
        stride: 1,
        padding: 1,
    };
    let halve = Conv1dParams {
        stride: 2,
        padding: 1,
    };
    let gelu = Activation::Gelu;
    g.bench_function(id("conv1_80x512_gelu"), |b| {
        b.iter(|| {
            sync(
                be,
                be.conv1d(&mel, &stem1.0, Some(&stem1.1), &same, gelu)
                    .unwrap(),
            )
        })
    });
    g.bench_function(id("conv2_512x512_stride2_gelu"), |b| {
        b.iter(|| {
            let y = be.conv1d(&stem1_out, &stem2.0, Some(&stem2.1), &halve, gelu);
            sync(be, y.unwrap())
        })
    });
    g.bench_function(id("layer_norm"), |b| {
        b.iter(|| sync(be, be.layer_norm(&x, &gamma, &beta, 1e-5).unwrap()))
    });
    let linear =
        |b: &mut criterion::Bencher, input: &B::Tensor, w: &(B::Tensor, B::Tensor), act| {
            b.iter(|| sync(be, be.linear(input, &w.0, Some(&w.1), act).unwrap()))
        };
    g.bench_function(id("linear_qkv_512x1536"), |b| {
        linear(b, &normed, &qkv_weight, Activation::None)
    });
    g.bench_function(id("attention_8_heads"), |b| {
        b.iter(|| sync(be, be.attention(&qkv, HEADS).unwrap()))
    });
    g.bench_function(id("linear_out_512x512"), |b| {
        linear(b, &normed, &out_weight, Activation::None)
    });
    g.bench_function(id("linear_mlp_in_512x2048_gelu"), |b| {
        linear(b, &normed, &mlp_in, gelu)
    });
    g.bench_function(id("linear_mlp_out_2048x512"), |b| {
        linear(b, &inner, &mlp_out, Activation::None)
    });
    // The same projection with the block's residual added in its epilogue (how the encoder
    // runs it): against the row above, what the residual costs.
    g.bench_function(id("linear_residual_mlp_out_2048x512"), |b| {
        b.iter(|| {
            let y = be.linear_residual(&inner, &mlp_out.0, Some(&mlp_out.1), &x);
            sync(be, y.unwrap())
        })
    });
    g.finish();
}

fn all<B: Backend>(c: &mut Criterion, be: &B, label: &str) {
    frontend(c, be, label);
    classifier(c, be, label);
    forward(c, be, label);
    encoder(c, be, label);
}

fn backends(c: &mut Criterion) {
    all(c, &CpuBackend::new(), "cpu");
    // The CPU's opt-in bf16 GEMMs (`DEEPSCREEN_CPU_MATH=bf16`), where the CPU has AVX512-BF16.
    match CpuBackend::with_math(CpuMath::Bf16) {
        Ok(be) => encoder(c, &be, "cpu-bf16"),
        Err(e) => eprintln!("cpu-bf16 benches skipped: {e}"),
    }
    match WgpuBackend::new() {
        Ok(be) => {
            eprintln!("wgpu adapter: {}", be.adapter_name());
            all(c, &be, "wgpu")
        }
        Err(e) => eprintln!("wgpu benches skipped: {e}"),
    }
    // CUDA twice: the f32 kernels (`cuda`) and the TF32 tensor-core ones (`cuda-tf32`).
    for (math, label) in [(Math::F32, "cuda"), (Math::Tf32, "cuda-tf32")] {
        match CudaBackend::with_math(math) {
            Ok(be) if be.math() == math => all(c, &be, label),
            Ok(_) => eprintln!("{label} benches skipped: no TF32 tensor cores on this device"),
            Err(e) => eprintln!("{label} benches skipped: {e}"),
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = backends
}
criterion_main!(benches);
