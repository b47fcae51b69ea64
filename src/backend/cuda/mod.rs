//! CUDA backend: the kernels in `kernels/*.cu`, compiled at run time with NVRTC for the
//! device's architecture and launched through cudarc. cudarc loads `libcuda` and `libnvrtc`
//! dynamically, so the binary builds and starts on machines without CUDA; because cudarc
//! panics when a library is missing, both are probed with `libloading` first and a missing
//! one makes the backend "unavailable" with the reason.
//!
//! Kernels are compiled once per process to machine code (CUBIN) for the device's exact
//! architecture, so the driver never JIT-compiles PTX. Device memory comes from the driver's
//! stream-ordered allocator (a memory pool), so a batch's buffers reuse the previous batch's
//! memory; every launch's result is checked.
//!
//! Two streams: batch uploads go through page-locked staging buffers on a copy stream, and
//! kernels plus readbacks run on the compute stream (cudarc's event tracking makes a kernel
//! wait for the upload it reads). With `start_download`/`finish_download` the caller can
//! queue batch k+1 before collecting batch k, so its upload overlaps batch k's kernels.
//!
//! Files: `driver.rs` (library and driver probe, NVRTC compilation, the kernel cache),
//! `device.rs` (context, streams, buffers, staging, upload/download, and the kernel launch
//! the op families in `backend::gpu` are written over). A new kernel adds its entry point to
//! `KERNELS`.

mod device;
mod driver;

pub use device::{CudaBackend, CudaReadback, CudaTensor, Math};
pub use driver::{Output, compile_kernels, nvrtc_missing, nvrtc_version, status};

use super::shapes::Shapes;
use crate::Error;

/// Every kernel source (`kernels/common.cuh` prepended) and the entry points it defines.
pub const KERNELS: &[(&str, &str, &[&str])] = &[
    (
        "frontend.cu",
        concat!(
            include_str!("../../../kernels/common.cuh"),
            include_str!("../../../kernels/frontend.cu")
        ),
        &[
            "stft_radix2",
            "stft_dft",
            "irfft_frames",
            "select_bins_log",
            "normalize_window",
            "normalize_global",
            "normalize_range",
        ],
    ),
    (
        "classifier.cu",
        concat!(
            include_str!("../../../kernels/common.cuh"),
            include_str!("../../../kernels/classifier.cu")
        ),
        &[
            "matmul",
            "matmul_tc",
            "matmul_tc_async",
            "conv2d",
            "conv2d_tc",
            "channel_affine",
            "mfm",
            "max_pool2d",
            "global_pool",
            "sigmoid",
            "softmax",
        ],
    ),
    (
        "encoder.cu",
        concat!(
            include_str!("../../../kernels/common.cuh"),
            include_str!("../../../kernels/encoder.cu")
        ),
        &[
            "conv1d",
            "conv1d_tc",
            "layer_norm",
            "attention",
            "attention_tc",
            "add",
        ],
    ),
    (
        "separator.cu",
        concat!(
            include_str!("../../../kernels/common.cuh"),
            include_str!("../../../kernels/separator.cu")
        ),
        &[
            "conv_transpose2d",
            "concat_channels",
            "mul",
            "ratio_mask",
            "overlap_add",
        ],
    ),
];

/// Shape rules, with "cuda" in their error messages.
const CHECK: Shapes = Shapes("cuda");

fn err(msg: impl Into<String>) -> Error {
    Error::backend("cuda", msg)
}

fn driver_err(op: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| err(format!("{op}: {e}"))
}
