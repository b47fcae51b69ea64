//! CPU backend: realfft for the STFT, matrixmultiply's SGEMM for projections, convolution
//! (im2col) and linear layers, rayon across the batch (and across frames for the STFT).

mod classifier;
mod frontend;

use std::sync::{Arc, Mutex};

use realfft::{RealFftPlanner, RealToComplex};

use super::shapes::Shapes;
use super::{
    Activation, Backend, Conv2dParams, DeviceTensor, GlobalPool, LogSpec, Normalization,
    PoolParams, Projection, StftParams,
};
use crate::Result;

/// A host tensor: row-major `data` with its `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Shape rules, with "cpu" in their error messages.
const CHECK: Shapes = Shapes("cpu");

impl CpuTensor {
    pub fn new(data: Vec<f32>, shape: &[usize]) -> Result<Self> {
        CHECK.upload(data.len(), shape)?;
        Ok(CpuTensor {
            shape: shape.to_vec(),
            data,
        })
    }
    pub fn data(&self) -> &[f32] {
        &self.data
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
        format!(
            "{} threads (rayon), realfft STFT, matrixmultiply SGEMM",
            rayon::current_num_threads()
        )
    }

    fn fft_plan(&self, n: usize) -> Arc<dyn RealToComplex<f32>> {
        // The planner caches plans, so repeated batches reuse twiddles.
        let mut planner = self.planner.lock().unwrap_or_else(|e| e.into_inner());
        planner.plan_fft_forward(n)
    }
}

/// `c[m×n] = a[m×k] · b[k×n]` with arbitrary strides on `a` and `b` (row-major `c`).
/// Callers have already checked shapes; the bounds are asserted again before the unsafe call.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    assert!(
        (m - 1) * rsa + (k - 1) * csa < a.len(),
        "sgemm: a out of bounds"
    );
    assert!(
        (k - 1) * rsb + (n - 1) * csb < b.len(),
        "sgemm: b out of bounds"
    );
    assert!(m * n <= c.len(), "sgemm: c out of bounds");
    // SAFETY: every index the kernel touches is within the slices (asserted above), and `c`
    // does not alias `a` or `b` (it is a distinct &mut).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

impl Backend for CpuBackend {
    type Tensor = CpuTensor;

    fn name(&self) -> &'static str {
        "cpu"
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

    fn reshape(&self, tensor: CpuTensor, shape: &[usize]) -> Result<CpuTensor> {
        CpuTensor::new(tensor.data, shape)
    }

    fn stft_power(
        &self,
        signal: &CpuTensor,
        window: &CpuTensor,
        params: &StftParams,
    ) -> Result<CpuTensor> {
        frontend::stft_power(self, signal, window, params)
    }

    fn filterbank_log(
        &self,
        power: &CpuTensor,
        projection: Projection<&CpuTensor>,
        log: LogSpec,
    ) -> Result<CpuTensor> {
        frontend::filterbank_log(power, projection, log)
    }

    fn dct(&self, features: &CpuTensor, basis: &CpuTensor) -> Result<CpuTensor> {
        frontend::dct(features, basis)
    }

    fn normalize(
        &self,
        features: &CpuTensor,
        mode: Normalization<&CpuTensor>,
    ) -> Result<CpuTensor> {
        frontend::normalize(features, mode)
    }

    fn conv2d(
        &self,
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        params: &Conv2dParams,
        activation: Activation,
    ) -> Result<CpuTensor> {
        classifier::conv2d(input, weight, bias, params, activation)
    }

    fn channel_affine(
        &self,
        input: &CpuTensor,
        scale: &CpuTensor,
        shift: &CpuTensor,
        activation: Activation,
    ) -> Result<CpuTensor> {
        classifier::channel_affine(input, scale, shift, activation)
    }

    fn max_pool2d(&self, input: &CpuTensor, params: &PoolParams) -> Result<CpuTensor> {
        classifier::max_pool2d(input, params)
    }

    fn mfm(&self, input: &CpuTensor) -> Result<CpuTensor> {
        classifier::mfm(input)
    }

    fn global_pool(&self, input: &CpuTensor, mode: GlobalPool) -> Result<CpuTensor> {
        classifier::global_pool(input, mode)
    }

    fn linear(
        &self,
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        activation: Activation,
    ) -> Result<CpuTensor> {
        classifier::linear(input, weight, bias, activation)
    }

    fn sigmoid(&self, input: &CpuTensor, scale: f32, bias: f32) -> Result<CpuTensor> {
        let data = input
            .data
            .iter()
            .map(|&x| super::sigmoid(scale * x + bias))
            .collect();
        CpuTensor::new(data, &input.shape)
    }

    fn softmax(&self, input: &CpuTensor) -> Result<CpuTensor> {
        let [_, n] = CHECK.softmax(&input.shape)?;
        let mut data = input.data.clone();
        for row in data.chunks_mut(n) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            for v in row.iter_mut() {
                *v /= sum;
            }
        }
        CpuTensor::new(data, &input.shape)
    }
}
