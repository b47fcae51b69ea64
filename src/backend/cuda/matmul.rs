//! The tiled GEMMs: `matmul` (`kernels/classifier.cu`), which filterbanks, the DCT and linear
//! layers lower to (see [`launch::Gemm`]), and the implicit-GEMM convolutions (`conv2d` in
//! `classifier.cu`, `conv1d` in `encoder.cu`, see [`launch::TiledConv`]).

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::device::ensure;
use super::{CudaBackend, CudaTensor, driver_err};
use crate::Result;
use crate::backend::launch::{Gemm, TILE, TiledConv};

impl CudaBackend {
    /// `out = epilogue(a · b + bias)` as planned by `gemm`.
    pub(super) fn matmul(
        &self,
        gemm: &Gemm,
        a: &CudaTensor,
        b: &CudaTensor,
        bias: Option<&CudaTensor>,
    ) -> Result<CudaTensor> {
        let mut out = self.alloc(&gemm.out_shape)?;
        if gemm.is_empty() {
            return Ok(out);
        }
        let (m, n, k) = (gemm.m as i32, gemm.n as i32, gemm.k as i32);
        let (b_trans, has_bias) = (gemm.b_trans as i32, gemm.has_bias as i32);
        let (act, log_kind) = (gemm.act as i32, gemm.log_kind as i32);
        let (tiles_x, tiles_y) = gemm.tiles();
        let cfg = LaunchConfig {
            grid_dim: (tiles_x as u32, tiles_y as u32, 1),
            block_dim: (TILE as u32, TILE as u32, 1),
            shared_mem_bytes: 0,
        };
        ensure(cfg.grid_dim.1 <= 65535, "matmul", || {
            format!("{} rows is too many for one launch", gemm.m)
        })?;
        let bias = bias.map_or(&self.dummy, |b| &b.buf);
        let mut l = self.stream.launch_builder(self.f("matmul"));
        l.arg(&a.buf).arg(&b.buf).arg(bias).arg(&mut out.buf);
        l.arg(&m)
            .arg(&n)
            .arg(&k)
            .arg(&b_trans)
            .arg(&has_bias)
            .arg(&act)
            .arg(&gemm.slope)
            .arg(&log_kind)
            .arg(&gemm.eps);
        // SAFETY: argument list matches the kernel signature in kernels/classifier.cu.
        unsafe { l.launch(cfg) }.map_err(driver_err("matmul"))?;
        Ok(out)
    }

    /// A convolution kernel (`entry`) taking input, weight, bias (or a dummy), output, its
    /// integer parameters, has-bias, activation and slope, launched as `conv` plans it.
    pub(super) fn tiled_conv(
        &self,
        entry: &'static str,
        conv: &TiledConv,
        input: &CudaTensor,
        weight: &CudaTensor,
        bias: Option<&CudaTensor>,
    ) -> Result<CudaTensor> {
        let mut out = self.alloc(&conv.out_shape)?;
        if conv.is_empty() {
            return Ok(out);
        }
        let dims: Vec<i32> = conv.dims.iter().map(|&v| v as i32).collect();
        let (has_bias, act) = (conv.has_bias as i32, conv.act as i32);
        let [x, y, windows] = conv.tiles.map(|t| t as u32);
        let cfg = LaunchConfig {
            grid_dim: (x, y, windows),
            block_dim: (TILE as u32, TILE as u32, 1),
            shared_mem_bytes: 0,
        };
        ensure(y <= 65535 && windows <= 65535, entry, || {
            "output too large for one launch".into()
        })?;
        let mut l = self.stream.launch_builder(self.f(entry));
        l.arg(&input.buf)
            .arg(&weight.buf)
            .arg(bias.map_or(&self.dummy, |b| &b.buf))
            .arg(&mut out.buf);
        for v in &dims {
            l.arg(v);
        }
        l.arg(&has_bias).arg(&act).arg(&conv.slope);
        // SAFETY: conv2d in kernels/classifier.cu and conv1d in kernels/encoder.cu take these
        // arguments in this order; `dims` is the kernel's integer list (launch::conv2d/conv1d).
        unsafe { l.launch(cfg) }.map_err(driver_err(entry))?;
        Ok(out)
    }
}
