//! Front-end ops on a GPU: STFT (`stft_radix2`, `stft_dft`), bin selection + log and
//! normalisation (`shaders/stft.wgsl`, `frontend*.wgsl`, `kernels/frontend.cu`); filterbank
//! matrices and the DCT run as GEMMs.

use super::gemm::matmul;
use super::{Grid, Input, Kernels, Params, f, launch_into};
use crate::Result;
use crate::backend::launch::{self, Filterbank, Normalize, SelectBins};
use crate::backend::{
    DeviceTensor, FrontendOps, LogSpec, NORM_EPS, Normalization, Projection, StftParams,
};

/// Word offsets in the `Params` of `shaders/frontend.wgsl` (shared by its kernels).
const FRONTEND_WIDTH_IN: usize = 1;
const FRONTEND_FRAMES: usize = 6;
const FRONTEND_MODE: usize = 7;
const FRONTEND_NORM_EPS: usize = 8;
const FRONTEND_BATCH: usize = 9;
const FRONTEND_BELOW_MAX: usize = 10;
const FRONTEND_SHIFT: usize = 11;
const FRONTEND_SCALE: usize = 12;

/// The STFT kernels: `[B, frames, bins]` of |X|^power, or with `complex` `[B, frames, bins, 2]`.
pub(super) fn stft<K: Kernels>(
    device: &K,
    signal: &K::Tensor,
    window: &K::Tensor,
    p: &StftParams,
    complex: bool,
) -> Result<K::Tensor> {
    let s = launch::stft(
        device.check(),
        signal.shape(),
        window.len(),
        p,
        device.radix2_max_nfft(),
    )?;
    let [batch, frames, bins] = s.out_shape();
    let shape = [batch, frames, bins, 2];
    let mut out = device.alloc(&shape[..if complex { 4 } else { 3 }])?;
    if s.rows() == 0 {
        return Ok(out);
    }
    // The layout of `Params` in shaders/stft.wgsl.
    let params = Params::new(&[
        s.batch as u32,
        s.len as u32,
        s.frames as u32,
        s.n_fft as u32,
        s.hop as u32,
        s.pad as u32,
        s.bins as u32,
        s.half as u32,
        s.log2_half,
        f(s.power),
        u32::from(complex),
    ]);
    let inputs = [
        Input::Tensor(signal),
        Input::Tensor(window),
        Input::Twiddles(s.n_fft),
    ];
    if s.radix2 {
        // One group per frame; CUDA keeps the n_fft/2 complex values in shared memory.
        let grid = Grid::Rows {
            rows: s.rows(),
            threads: 256,
            shared: (s.half * 8) as u32,
        };
        device.launch("stft_radix2", &params, &inputs, &mut out, grid)?;
    } else {
        let grid = Grid::Items(s.rows() * s.bins);
        device.launch("stft_dft", &params, &inputs, &mut out, grid)?;
    }
    Ok(out)
}

impl<K: Kernels> FrontendOps for K {
    fn stft_power(
        &self,
        signal: &K::Tensor,
        window: &K::Tensor,
        p: &StftParams,
    ) -> Result<K::Tensor> {
        stft(self, signal, window, p, false)
    }

    fn filterbank_log(
        &self,
        power: &K::Tensor,
        projection: Projection<&K::Tensor>,
        log: LogSpec,
    ) -> Result<K::Tensor> {
        match launch::filterbank(self.check(), power.shape(), projection, log)? {
            Filterbank::SelectBins(sel) => select_bins_log(self, &sel, power),
            Filterbank::Matrix { gemm, matrix } => matmul(self, &gemm, power, matrix, None, None),
        }
    }

    fn dct(&self, features: &K::Tensor, basis: &K::Tensor) -> Result<K::Tensor> {
        let gemm = launch::dct(self.check(), features.shape(), basis.shape())?;
        matmul(self, &gemm, features, basis, None, None)
    }

    fn normalize(
        &self,
        features: &K::Tensor,
        mode: Normalization<&K::Tensor>,
    ) -> Result<K::Tensor> {
        let plan = launch::normalize(self.check(), features.shape(), mode)?;
        let mut out = self.alloc(features.shape())?;
        let threads = plan.threads();
        if threads == 0 {
            return Ok(out);
        }
        match plan {
            Normalize::Global {
                n,
                width,
                mean,
                std,
            } => {
                // The layout of `Params` in shaders/frontend_global.wgsl.
                self.launch(
                    "normalize_global",
                    &Params::new(&[n as u32, width as u32]),
                    &[
                        Input::Tensor(features),
                        Input::Tensor(mean),
                        Input::Tensor(std),
                    ],
                    &mut out,
                    Grid::Items(threads),
                )?;
            }
            Normalize::Window {
                batch,
                frames,
                feats,
                mean_var,
            } => {
                let params = Params::new(&[])
                    .with(FRONTEND_WIDTH_IN, feats as u32)
                    .with(FRONTEND_FRAMES, frames as u32)
                    .with(FRONTEND_MODE, mean_var as u32)
                    .with(FRONTEND_NORM_EPS, f(NORM_EPS))
                    .with(FRONTEND_BATCH, batch as u32);
                self.launch(
                    "normalize_window",
                    &params,
                    &[Input::Tensor(features)],
                    &mut out,
                    Grid::Items(threads),
                )?;
            }
            Normalize::Range {
                batch,
                per_window,
                range,
            } => {
                // `rows` (word 0) is the values per window.
                let params = Params::new(&[per_window as u32])
                    .with(FRONTEND_BATCH, batch as u32)
                    .with(FRONTEND_BELOW_MAX, f(range.below_max))
                    .with(FRONTEND_SHIFT, f(range.shift))
                    .with(FRONTEND_SCALE, f(range.scale));
                self.launch(
                    "normalize_range",
                    &params,
                    &[Input::Tensor(features)],
                    &mut out,
                    Grid::rows(batch),
                )?;
            }
        }
        Ok(out)
    }
}

/// Pick a band of power bins and compress them (the identity filterbank).
fn select_bins_log<K: Kernels>(
    device: &K,
    sel: &SelectBins,
    power: &K::Tensor,
) -> Result<K::Tensor> {
    // The layout of `Params` in shaders/frontend.wgsl.
    let params = Params::new(&[
        sel.rows as u32,
        sel.width_in as u32,
        sel.start as u32,
        sel.width_out as u32,
        sel.log_kind,
        f(sel.eps),
    ]);
    launch_into(
        device,
        "select_bins_log",
        &params,
        &[Input::Tensor(power)],
        &sel.out_shape,
        Grid::Items(sel.threads()),
    )
}
