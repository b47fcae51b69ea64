//! wgpu front-end ops: STFT (`shaders/stft.wgsl`), filterbank + log and per-window
//! normalisation (`shaders/frontend.wgsl`), global normalisation (`frontend_global.wgsl`);
//! filterbank matrices and the DCT run as GEMMs (`matmul.rs`).

use super::device::{f, grid_for, grid_rows};
use super::{CHECK, WgpuBackend, WgpuTensor};
use crate::Result;
use crate::backend::launch::{self, Filterbank, Normalize, SelectBins};
use crate::backend::{
    DeviceTensor, FrontendOps, LogSpec, NORM_EPS, Normalization, Projection, StftParams,
};

/// Largest n_fft the radix-2 shared-memory kernel handles (its buffer holds n_fft/2 complex).
const RADIX2_MAX_NFFT: usize = 4096;

impl FrontendOps for WgpuBackend {
    fn stft_power(
        &self,
        signal: &WgpuTensor,
        window: &WgpuTensor,
        p: &StftParams,
    ) -> Result<WgpuTensor> {
        let s = launch::stft(CHECK, &signal.shape, window.len(), p, RADIX2_MAX_NFFT)?;
        let out = self.alloc(&s.out_shape())?;
        let params = [
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
        ];
        let twiddles = self.twiddles(s.n_fft);
        let buffers = [
            signal.buffer.buffer(),
            window.buffer.buffer(),
            out.buffer.buffer(),
            &twiddles,
        ];
        if s.rows() > 0 {
            if s.radix2 {
                let rows = grid_rows(s.rows(), "frames")?;
                self.dispatch("stft_radix2", &params, &buffers, rows);
            } else {
                let threads = s.rows() * s.bins;
                self.dispatch("stft_dft", &params, &buffers, grid_for(threads)?);
            }
        }
        Ok(out)
    }

    fn filterbank_log(
        &self,
        power: &WgpuTensor,
        projection: Projection<&WgpuTensor>,
        log: LogSpec,
    ) -> Result<WgpuTensor> {
        match launch::filterbank(CHECK, &power.shape, projection, log)? {
            Filterbank::SelectBins(sel) => self.select_bins_log(&sel, power),
            Filterbank::Matrix { gemm, matrix } => self.matmul(&gemm, power, matrix, None),
        }
    }

    fn dct(&self, features: &WgpuTensor, basis: &WgpuTensor) -> Result<WgpuTensor> {
        let gemm = launch::dct(CHECK, &features.shape, &basis.shape)?;
        self.matmul(&gemm, features, basis, None)
    }

    fn normalize(
        &self,
        features: &WgpuTensor,
        mode: Normalization<&WgpuTensor>,
    ) -> Result<WgpuTensor> {
        let plan = launch::normalize(CHECK, &features.shape, mode)?;
        let out = self.alloc(&features.shape)?;
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
                self.dispatch(
                    "normalize_global",
                    &[n as u32, width as u32],
                    &[
                        features.buffer.buffer(),
                        mean.buffer.buffer(),
                        std.buffer.buffer(),
                        out.buffer.buffer(),
                    ],
                    grid_for(threads)?,
                );
            }
            Normalize::Window {
                batch,
                frames,
                feats,
                mean_var,
            } => {
                // The layout of `Params` in shaders/frontend.wgsl (shared with select_bins_log).
                let params = [
                    0,
                    feats as u32,
                    0,
                    0,
                    0,
                    0,
                    frames as u32,
                    mean_var as u32,
                    f(NORM_EPS),
                    batch as u32,
                ];
                self.dispatch(
                    "normalize_window",
                    &params,
                    &[features.buffer.buffer(), out.buffer.buffer()],
                    grid_for(threads)?,
                );
            }
            Normalize::Whisper { batch, per_window } => {
                // The layout of `Params` in shaders/frontend.wgsl: rows = values per window.
                let mut params = [0u32; 10];
                params[0] = per_window as u32;
                params[9] = batch as u32;
                let groups = grid_rows(batch, "windows")?;
                self.dispatch(
                    "normalize_whisper",
                    &params,
                    &[features.buffer.buffer(), out.buffer.buffer()],
                    groups,
                );
            }
        }
        Ok(out)
    }
}

impl WgpuBackend {
    fn select_bins_log(&self, sel: &SelectBins, power: &WgpuTensor) -> Result<WgpuTensor> {
        let out = self.alloc(&sel.out_shape)?;
        let params = [
            sel.rows as u32,
            sel.width_in as u32,
            sel.start as u32,
            sel.width_out as u32,
            sel.log_kind,
            f(sel.eps),
        ];
        if sel.threads() > 0 {
            self.dispatch(
                "select_bins_log",
                &params,
                &[power.buffer.buffer(), out.buffer.buffer()],
                grid_for(sel.threads())?,
            );
        }
        Ok(out)
    }
}
