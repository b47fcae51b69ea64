//! The GPU op families, written once for both GPU backends over [`Kernels`]: what a GPU
//! device offers them (output buffers and kernel launches). Each op checks shapes, plans the
//! launch (`launch.rs`), fills its kernel's parameter block and launches; the wgpu backend
//! runs the WGSL kernel of that name (`shaders/*.wgsl`), the CUDA backend the CUDA C++ one
//! (`kernels/*.cu`).
//!
//! One calling convention serves both languages: a kernel takes a parameter block of 32-bit
//! words (WGSL: the uniform `Params` struct at binding 0; CUDA: a struct of the same layout,
//! passed by value as the first argument), then its input buffers in order, then its output.

mod classifier;
mod encoder;
mod frontend;
mod gemm;
mod separator;

pub(crate) use gemm::F16_VARIANTS;

use super::Device;
use super::shapes::Shapes;
use crate::Result;

/// Words in every kernel's parameter block (unused trailing words are zero).
pub const PARAM_WORDS: usize = 32;

/// A kernel's parameter block: the fields of its `Params` struct, in order, as 32-bit words
/// (floats as their bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Params(pub [u32; PARAM_WORDS]);

impl Params {
    /// `words` at the start, zeros after.
    pub fn new(words: &[u32]) -> Params {
        assert!(
            words.len() <= PARAM_WORDS,
            "kernel parameters exceed {PARAM_WORDS} words"
        );
        let mut block = [0u32; PARAM_WORDS];
        block[..words.len()].copy_from_slice(words);
        Params(block)
    }

    /// Set word `at` (for kernels that share one `Params` layout and each use a few fields).
    pub fn with(mut self, at: usize, word: u32) -> Params {
        self.0[at] = word;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

/// A float parameter as its word.
pub fn f(x: f32) -> u32 {
    x.to_bits()
}

/// A buffer a kernel reads.
pub enum Input<'a, T> {
    Tensor(&'a T),
    /// An optional input (a bias) that is absent: a placeholder is bound, which the kernel,
    /// told so by its parameters, never reads.
    Absent,
    /// The table `launch::twiddles(n_fft)`. WGSL's FFT reads it (Vulkan only promises 2^-11
    /// for a shader's sin/cos); CUDA's computes its twiddles with `sincospif`, so the CUDA
    /// backend binds nothing for it.
    Twiddles(usize),
}

/// How many threads a launch runs, in terms of the kernel's own indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// One thread per item, in 256-thread groups (the kernel folds a 2-D grid back to an index).
    Items(usize),
    /// One group of `threads` threads per row (WGSL declares the same size), with `shared`
    /// bytes of dynamic shared memory on CUDA.
    Rows {
        rows: usize,
        threads: u32,
        shared: u32,
    },
    /// `launch::TILE`² threads per group, `[x, y, z]` groups.
    Tiles([usize; 3]),
    /// `[x, y, z]` groups of `threads` threads in one dimension (the tensor-core kernels).
    Groups { groups: [usize; 3], threads: u32 },
}

impl Grid {
    /// Whether the launch has no thread to run.
    pub fn is_empty(&self) -> bool {
        match *self {
            Grid::Items(n) | Grid::Rows { rows: n, .. } => n == 0,
            Grid::Tiles(t) | Grid::Groups { groups: t, .. } => t.contains(&0),
        }
    }

    /// One 256-thread group per row, no dynamic shared memory.
    pub fn rows(rows: usize) -> Grid {
        Grid::Rows {
            rows,
            threads: 256,
            shared: 0,
        }
    }
}

/// The GEMM kernels a device runs (see `gemm::tiled_entry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmKind {
    /// 16×16 output tiles, one output per thread, f32 (`matmul`, `conv2d`, `conv1d`).
    Tiled,
    /// `matmul_rb`: 64×64 output tiles of 16×16 threads, 4×4 outputs each (register
    /// blocking), f32; and `attention_tiled` (key/value tiles shared by 64 queries). The
    /// convolutions stay `Tiled`.
    RegisterBlocked,
    /// The CUDA tensor-core kernels (`*_tc`: TF32 inputs, f32 accumulation), attention too.
    TensorCores,
}

impl GemmKind {
    /// For `deepscreen devices`: which kernels run the matrix products.
    pub fn describe(self) -> &'static str {
        match self {
            GemmKind::Tiled => "16x16 tiles, per-query attention",
            GemmKind::RegisterBlocked => "register-blocked 64x64 tiles, shared key/value tiles",
            GemmKind::TensorCores => "on TF32 tensor cores",
        }
    }
}

/// What a GPU device offers the op families: output buffers and kernel launches. The
/// [`FrontendOps`](super::FrontendOps), [`ClassifierOps`](super::ClassifierOps) and
/// [`EncoderOps`](super::EncoderOps) of every `Kernels` device are the ones in this module.
pub trait Kernels: Device {
    /// An uninitialised tensor of `shape` (each kernel writes every element of its output).
    fn alloc(&self, shape: &[usize]) -> Result<Self::Tensor>;

    /// Queue `kernel` with its parameter block, its inputs and its output over `grid`;
    /// errors when the grid exceeds the device's launch limits.
    fn launch(
        &self,
        kernel: &'static str,
        params: &Params,
        inputs: &[Input<'_, Self::Tensor>],
        out: &mut Self::Tensor,
        grid: Grid,
    ) -> Result<()>;

    /// Largest n_fft the shared-memory radix-2 STFT kernel takes on this device.
    fn radix2_max_nfft(&self) -> usize;

    /// Which kernels this device runs its GEMMs (and, with tensor cores, convolutions and
    /// attention) on.
    fn gemm_kind(&self) -> GemmKind {
        GemmKind::Tiled
    }

    /// Whether linear layers' GEMMs stage their tiles in f16 (wgpu's `matmul*_f16`).
    fn f16_gemm(&self) -> bool {
        false
    }

    /// Whether linear layers' tensor-core GEMM copies its tiles asynchronously in two stages
    /// (CUDA's `matmul_tc_async`, opt-in).
    fn async_copy_gemm(&self) -> bool {
        false
    }

    /// Shape rules with this backend's name in their errors.
    fn check(&self) -> Shapes {
        Shapes(self.name())
    }
}

/// A new `out_shape` tensor written by `kernel` over `grid` (nothing launched when the grid is
/// empty): the shape of most ops.
pub(super) fn launch_into<K: Kernels>(
    device: &K,
    kernel: &'static str,
    params: &Params,
    inputs: &[Input<'_, K::Tensor>],
    out_shape: &[usize],
    grid: Grid,
) -> Result<K::Tensor> {
    let mut out = device.alloc(out_shape)?;
    if !grid.is_empty() {
        device.launch(kernel, params, inputs, &mut out, grid)?;
    }
    Ok(out)
}
