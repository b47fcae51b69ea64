//! The CPU "device": host tensors, the FFT planner, and transfers that are plain copies.

use std::sync::{Arc, Mutex, OnceLock};

use realfft::{RealFftPlanner, RealToComplex};

use super::packed::{Kernel, Layout, PackedWeight};
use super::{CHECK, pool};
use crate::Result;
use crate::backend::{Device, DeviceTensor};

/// A host tensor: row-major `data` with its `shape`.
#[derive(Debug, Clone)]
pub struct CpuTensor {
    pub(super) shape: Vec<usize>,
    pub(super) data: Vec<f32>,
    /// The tensor as a packed weight (of a linear layer or a convolution), made the first
    /// time one uses it.
    packed: Arc<OnceLock<(Layout, PackedWeight)>>,
}

impl Drop for CpuTensor {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

impl PartialEq for CpuTensor {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

impl CpuTensor {
    pub fn new(data: Vec<f32>, shape: &[usize]) -> Result<Self> {
        CHECK.upload(data.len(), shape)?;
        Ok(CpuTensor {
            shape: shape.to_vec(),
            data,
            packed: Arc::default(),
        })
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// This weight packed for [`PackedWeight::matmul`] in `layout` (packed on first use, once;
    /// a tensor is only ever one layer's weight, so one layout is kept).
    pub(super) fn packed(&self, layout: Layout) -> std::borrow::Cow<'_, PackedWeight> {
        let pack = || PackedWeight::new(&self.data, &self.shape, layout);
        match self.packed.get_or_init(|| (layout, pack())) {
            (kept, packed) if *kept == layout => std::borrow::Cow::Borrowed(packed),
            _ => std::borrow::Cow::Owned(pack()),
        }
    }
}

impl DeviceTensor for CpuTensor {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
}

pub struct CpuBackend {
    planner: Mutex<RealFftPlanner<f32>>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend {
            planner: Mutex::new(RealFftPlanner::new()),
        }
    }

    /// One line for `deepscreen devices`.
    pub fn describe() -> String {
        let gemm = match Kernel::best() {
            Some(Kernel::Avx512) => "AVX-512 packed GEMM",
            Some(Kernel::Avx2) => "AVX2+FMA packed GEMM",
            None => "matrixmultiply SGEMM",
        };
        format!(
            "{} threads (rayon), realfft STFT, {gemm}",
            rayon::current_num_threads()
        )
    }

    pub(super) fn fft_plan(&self, n: usize) -> Arc<dyn RealToComplex<f32>> {
        // The planner caches plans, so repeated batches reuse twiddles.
        let mut planner = self.planner.lock().unwrap_or_else(|e| e.into_inner());
        planner.plan_fft_forward(n)
    }
}

impl Device for CpuBackend {
    type Tensor = CpuTensor;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn tensors_on_host(&self) -> bool {
        true
    }

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<CpuTensor> {
        CpuTensor::new(data.to_vec(), shape)
    }

    type Readback = Vec<f32>;

    /// Done at once: the data is already in host memory.
    fn start_download(&self, tensor: &CpuTensor) -> Result<Vec<f32>> {
        Ok(tensor.data.clone())
    }

    fn finish_download(&self, values: Vec<f32>) -> Result<Vec<f32>> {
        Ok(values)
    }

    fn reshape(&self, mut tensor: CpuTensor, shape: &[usize]) -> Result<CpuTensor> {
        CpuTensor::new(std::mem::take(&mut tensor.data), shape)
    }
}
