//! CUDA front-end ops (`kernels/frontend.cu`): STFT, filterbank + log, normalisation;
//! filterbank matrices and the DCT run as GEMMs (`matmul.rs`).

use cudarc::driver::PushKernelArg;

use super::device::{THREADS, block_per_row, linear};
use super::{CHECK, CudaBackend, CudaTensor, driver_err};
use crate::Result;
use crate::backend::launch::{self, Filterbank, Normalize, SelectBins};
use crate::backend::{
    DeviceTensor, FrontendOps, LogSpec, NORM_EPS, Normalization, Projection, StftParams,
};

/// Largest n_fft the shared-memory radix-2 kernel takes (n_fft/2 float2 = 32 KiB).
const RADIX2_MAX_NFFT: usize = 8192;

impl FrontendOps for CudaBackend {
    fn stft_power(
        &self,
        signal: &CudaTensor,
        window: &CudaTensor,
        p: &StftParams,
    ) -> Result<CudaTensor> {
        let op = "stft_power";
        // The radix-2 kernel keeps n_fft/2 float2 (4 bytes per n_fft) in shared memory.
        let radix2_max = RADIX2_MAX_NFFT.min(self.max_shared / 4);
        let s = launch::stft(CHECK, &signal.shape, window.len(), p, radix2_max)?;
        let mut out = self.alloc(&s.out_shape())?;
        let rows = s.rows();
        if rows == 0 {
            return Ok(out);
        }
        let ints = [s.batch, s.len, s.frames, s.n_fft, s.hop, s.pad, s.bins].map(|v| v as i32);
        if s.radix2 {
            let log2_half = s.log2_half as i32;
            let cfg = block_per_row(rows, THREADS, (s.half * 8) as u32);
            let mut l = self.stream.launch_builder(self.f("stft_radix2"));
            l.arg(&signal.buf).arg(&window.buf).arg(&mut out.buf);
            for v in &ints {
                l.arg(v);
            }
            l.arg(&log2_half).arg(&s.power);
            // SAFETY: matches stft_radix2 in kernels/frontend.cu; shared memory = n_fft/2 float2.
            unsafe { l.launch(cfg) }.map_err(driver_err(op))?;
        } else {
            let mut l = self.stream.launch_builder(self.f("stft_dft"));
            l.arg(&signal.buf).arg(&window.buf).arg(&mut out.buf);
            for v in &ints {
                l.arg(v);
            }
            l.arg(&s.power);
            // SAFETY: matches stft_dft in kernels/frontend.cu.
            unsafe { l.launch(linear(rows * s.bins)?) }.map_err(driver_err(op))?;
        }
        Ok(out)
    }

    fn filterbank_log(
        &self,
        power: &CudaTensor,
        projection: Projection<&CudaTensor>,
        log: LogSpec,
    ) -> Result<CudaTensor> {
        match launch::filterbank(CHECK, &power.shape, projection, log)? {
            Filterbank::SelectBins(sel) => self.select_bins_log(&sel, power),
            Filterbank::Matrix { gemm, matrix } => self.matmul(&gemm, power, matrix, None),
        }
    }

    fn dct(&self, features: &CudaTensor, basis: &CudaTensor) -> Result<CudaTensor> {
        let gemm = launch::dct(CHECK, &features.shape, &basis.shape)?;
        self.matmul(&gemm, features, basis, None)
    }

    fn normalize(
        &self,
        features: &CudaTensor,
        mode: Normalization<&CudaTensor>,
    ) -> Result<CudaTensor> {
        let op = "normalize";
        let plan = launch::normalize(CHECK, &features.shape, mode)?;
        let mut out = self.alloc(&features.shape)?;
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
                let (n64, w) = (n as i64, width as i32);
                let mut l = self.stream.launch_builder(self.f("normalize_global"));
                l.arg(&features.buf)
                    .arg(&mean.buf)
                    .arg(&std.buf)
                    .arg(&mut out.buf)
                    .arg(&n64)
                    .arg(&w);
                // SAFETY: matches normalize_global in kernels/frontend.cu.
                unsafe { l.launch(linear(threads)?) }.map_err(driver_err(op))?;
            }
            Normalize::Window {
                batch,
                frames,
                feats,
                mean_var,
            } => {
                let [b, t, f, m] = [batch, frames, feats, mean_var as usize].map(|v| v as i32);
                let mut l = self.stream.launch_builder(self.f("normalize_window"));
                l.arg(&features.buf)
                    .arg(&mut out.buf)
                    .arg(&b)
                    .arg(&t)
                    .arg(&f)
                    .arg(&m)
                    .arg(&NORM_EPS);
                // SAFETY: matches normalize_window in kernels/frontend.cu.
                unsafe { l.launch(linear(threads)?) }.map_err(driver_err(op))?;
            }
            Normalize::Whisper { batch, per_window } => {
                let (b64, n32) = (batch as i64, per_window as i32);
                let cfg = block_per_row(batch, THREADS, 0);
                let mut l = self.stream.launch_builder(self.f("normalize_whisper"));
                l.arg(&features.buf).arg(&mut out.buf).arg(&b64).arg(&n32);
                // SAFETY: matches normalize_whisper in kernels/frontend.cu (256-thread blocks).
                unsafe { l.launch(cfg) }.map_err(driver_err(op))?;
            }
        }
        Ok(out)
    }
}

impl CudaBackend {
    fn select_bins_log(&self, sel: &SelectBins, power: &CudaTensor) -> Result<CudaTensor> {
        let mut out = self.alloc(&sel.out_shape)?;
        if sel.threads() > 0 {
            let rows = sel.rows as i64;
            let [width_in, start, width_out, log_kind] = [
                sel.width_in,
                sel.start,
                sel.width_out,
                sel.log_kind as usize,
            ]
            .map(|v| v as i32);
            let mut l = self.stream.launch_builder(self.f("select_bins_log"));
            l.arg(&power.buf)
                .arg(&mut out.buf)
                .arg(&rows)
                .arg(&width_in)
                .arg(&start)
                .arg(&width_out)
                .arg(&log_kind)
                .arg(&sel.eps);
            // SAFETY: matches select_bins_log in kernels/frontend.cu.
            unsafe { l.launch(linear(sel.threads())?) }.map_err(driver_err("filterbank_log"))?;
        }
        Ok(out)
    }
}
