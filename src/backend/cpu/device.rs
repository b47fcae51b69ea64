//! The CPU "device": host tensors, the FFT planner, and transfers that are plain copies.

use std::sync::{Arc, Mutex, OnceLock};

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

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
    packed: Arc<OnceLock<(Layout, Kernel, PackedWeight)>>,
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

    /// This weight packed for [`PackedWeight::matmul`] in `layout` for `kernel` (packed on
    /// first use, once; a tensor is only ever one layer's weight on one backend, so one
    /// packing is kept).
    pub(super) fn packed(
        &self,
        layout: Layout,
        kernel: Kernel,
    ) -> std::borrow::Cow<'_, PackedWeight> {
        let pack = || PackedWeight::for_kernel(&self.data, &self.shape, layout, kernel);
        match self.packed.get_or_init(|| (layout, kernel, pack())) {
            (l, k, packed) if (*l, *k) == (layout, kernel) => std::borrow::Cow::Borrowed(packed),
            _ => std::borrow::Cow::Owned(pack()),
        }
    }
}

impl DeviceTensor for CpuTensor {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
}

/// The arithmetic of the linear layers' and convolutions' GEMMs on packed weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Math {
    /// f32 throughout (the default, and the reference).
    F32,
    /// Weights and activations rounded to bf16 (8 significant bits) as they are packed,
    /// products summed in f32, on AVX512-BF16 (`vdpbf16ps`: two depth steps per instruction).
    /// Opt-in: scores move by up to a few thousandths (BENCHMARKS.md). Attention, the STFT
    /// and the CNNs' convolutions stay f32.
    Bf16,
}

impl Math {
    /// `DEEPSCREEN_CPU_MATH` (`f32` or `bf16`), or f32 when unset.
    pub fn from_env() -> Result<Math> {
        Self::read_env().map_err(|reason| crate::Error::backend("cpu", reason))
    }

    fn read_env() -> std::result::Result<Math, String> {
        match std::env::var("DEEPSCREEN_CPU_MATH").as_deref() {
            Err(_) | Ok("") | Ok("f32") => Ok(Math::F32),
            Ok("bf16") => Ok(Math::Bf16),
            Ok(other) => Err(format!(
                "DEEPSCREEN_CPU_MATH={other}: expected f32 (the default) or bf16"
            )),
        }
    }

    /// The packed kernel this arithmetic runs on here (`None`: matrixmultiply's SGEMM, on CPUs
    /// without AVX2+FMA), or why it cannot run.
    fn kernel(self) -> std::result::Result<Option<Kernel>, String> {
        match self {
            Math::F32 => Ok(Kernel::best()),
            Math::Bf16 if Kernel::Avx512Bf16.runs_here() => Ok(Some(Kernel::Avx512Bf16)),
            Math::Bf16 => Err(
                "bf16 GEMMs (DEEPSCREEN_CPU_MATH=bf16) need AVX512-BF16, which this \
                 CPU lacks; unset DEEPSCREEN_CPU_MATH for f32"
                    .into(),
            ),
        }
    }
}

pub struct CpuBackend {
    planner: Mutex<RealFftPlanner<f32>>,
    /// The kernel of the linear layers' and convolutions' GEMMs (`None`: matrixmultiply).
    weights: Option<Kernel>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// The f32 backend (whatever `DEEPSCREEN_CPU_MATH` says).
    pub fn new() -> Self {
        CpuBackend {
            planner: Mutex::new(RealFftPlanner::new()),
            weights: Kernel::best(),
        }
    }

    /// The backend with the GEMM arithmetic `math`; an error where this CPU cannot run it.
    pub fn with_math(math: Math) -> Result<Self> {
        let weights = math
            .kernel()
            .map_err(|reason| crate::Error::backend("cpu", reason))?;
        Ok(CpuBackend {
            weights,
            ..Self::new()
        })
    }

    /// The backend with the arithmetic `DEEPSCREEN_CPU_MATH` asks for (what the CLI opens).
    pub fn from_env() -> Result<Self> {
        Self::with_math(Math::from_env()?)
    }

    /// One line for `deepscreen devices`, for the arithmetic `DEEPSCREEN_CPU_MATH` asks for;
    /// or why that cannot run here.
    pub fn describe() -> std::result::Result<String, String> {
        let math = Math::read_env()?;
        let gemm = match math.kernel()? {
            Some(Kernel::Avx512Bf16) => {
                "AVX512-BF16 packed GEMM on bf16 (DEEPSCREEN_CPU_MATH=bf16)"
            }
            Some(Kernel::Avx512) => "AVX-512 packed GEMM",
            Some(Kernel::Avx2) => "AVX2+FMA packed GEMM",
            None => "matrixmultiply SGEMM",
        };
        Ok(format!(
            "{} threads (rayon), realfft STFT, {gemm}",
            rayon::current_num_threads()
        ))
    }

    /// The packed kernel of the linear layers and convolutions, if any.
    pub(super) fn weight_kernel(&self) -> Option<Kernel> {
        self.weights
    }

    pub(super) fn fft_plan(&self, n: usize) -> Arc<dyn RealToComplex<f32>> {
        // The planner caches plans, so repeated batches reuse twiddles.
        let mut planner = self.planner.lock().unwrap_or_else(|e| e.into_inner());
        planner.plan_fft_forward(n)
    }

    pub(super) fn ifft_plan(&self, n: usize) -> Arc<dyn ComplexToReal<f32>> {
        let mut planner = self.planner.lock().unwrap_or_else(|e| e.into_inner());
        planner.plan_fft_inverse(n)
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
