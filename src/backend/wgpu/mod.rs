//! wgpu backend: every op as a WGSL compute shader (`shaders/*.wgsl`), on any GPU wgpu reaches
//! (Vulkan, Metal, DX12) and on Mesa's software Vulkan (lavapipe) where there is none.
//!
//! Design:
//! - one device per backend; the adapter is the first high-performance one, or the one whose
//!   name contains `WGPU_ADAPTER_NAME`; device limits are the adapter's own;
//! - shader modules compiled once, pipelines cached by entry point;
//! - ops are recorded into one pending command encoder (uploads are encoder-ordered copies
//!   from staging buffers, so recycled buffers are never overwritten early) and submitted only
//!   when a result is downloaded: a whole forward pass is one submission;
//! - storage buffers come from a pool keyed by size and return to it when a tensor drops.
//!
//! Files: `device.rs` (adapter probe, device, pipelines, buffers, upload/download, and the
//! kernel launch the op families in `backend::gpu` are written over), `pool.rs` (recycled
//! storage buffers). A new kernel adds its shader to `MODULES`.

mod device;
mod pool;

pub use device::{
    WgpuBackend, WgpuOptions, WgpuReadback, WgpuTensor, offered_features, preferred_by_auto, status,
};

use super::shapes::Shapes;

const COMMON: &str = include_str!("../../../shaders/common.wgsl");
/// `workgroup_reduce` through workgroup memory, and with subgroup operations: one of the two
/// follows `COMMON` in every module.
const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
const REDUCE_SUBGROUPS: &str = include_str!("../../../shaders/reduce_subgroups.wgsl");
/// The type GEMM tiles are staged in (`shaders/gemm.wgsl`), in every module but the f16 one,
/// and the register-blocked kernel's padded row length (65 words: its staging stores hit
/// distinct banks).
const STAGE_F32: &str = "alias Stage = f32;\nconst STAGE_ROW = 65u;\n\
    fn stage(v: f32) -> Stage { return v; }\n";
/// Its f16 version (66 halves a row: 33 words). f16 keeps 11 significant bits between 6.1e-5
/// and 65504 in magnitude; below, values lose bits (or flush to zero on some drivers), and past
/// the top one they saturate there instead of becoming infinite. Linear layers' inputs are
/// assumed to lie in that range (activations of normalised networks); the front-end's spectra
/// do not, so its GEMMs never use these tiles.
const STAGE_F16: &str = "alias Stage = f16;\nconst STAGE_ROW = 66u;\n\
    fn stage(v: f32) -> Stage { return f16(clamp(v, -65504.0, 65504.0)); }\n";
/// The module built a second time with `STAGE_F16`, for `gpu::F16_VARIANTS`.
const F16_MODULE: &str = "matmul";

/// Each WGSL file and the entry points it defines.
const MODULES: &[(&str, &str, &[&str])] = &[
    (
        "stft",
        include_str!("../../../shaders/stft.wgsl"),
        &["stft_radix2", "stft_dft", "irfft_frames"],
    ),
    (
        "matmul",
        concat!(
            include_str!("../../../shaders/gemm.wgsl"),
            include_str!("../../../shaders/matmul.wgsl")
        ),
        &["matmul", "matmul_rb"],
    ),
    (
        "matmul_vec4",
        concat!(
            include_str!("../../../shaders/gemm.wgsl"),
            include_str!("../../../shaders/matmul_vec4.wgsl")
        ),
        &["matmul_rb_vec4"],
    ),
    (
        "conv",
        include_str!("../../../shaders/conv.wgsl"),
        &["conv2d"],
    ),
    (
        "frontend",
        include_str!("../../../shaders/frontend.wgsl"),
        &["select_bins_log", "normalize_window", "normalize_range"],
    ),
    (
        "frontend_global",
        include_str!("../../../shaders/frontend_global.wgsl"),
        &["normalize_global"],
    ),
    (
        "affine",
        include_str!("../../../shaders/affine.wgsl"),
        &["channel_affine"],
    ),
    (
        "layers",
        include_str!("../../../shaders/layers.wgsl"),
        &["mfm", "max_pool2d", "global_pool", "sigmoid", "softmax"],
    ),
    (
        "encoder",
        include_str!("../../../shaders/encoder.wgsl"),
        &["conv1d", "layer_norm"],
    ),
    (
        "attention",
        include_str!("../../../shaders/attention.wgsl"),
        &["attention", "attention_tiled"],
    ),
    ("add", include_str!("../../../shaders/add.wgsl"), &["add"]),
    (
        "separator",
        include_str!("../../../shaders/separator.wgsl"),
        &["conv_transpose2d"],
    ),
    (
        "concat",
        include_str!("../../../shaders/concat.wgsl"),
        &["concat_channels", "mul"],
    ),
    (
        "overlap_add",
        include_str!("../../../shaders/overlap_add.wgsl"),
        &["overlap_add"],
    ),
    (
        "ratio_mask",
        include_str!("../../../shaders/ratio_mask.wgsl"),
        &["ratio_mask"],
    ),
];

/// Shape rules, with "wgpu" in their error messages.
const CHECK: Shapes = Shapes("wgpu");
