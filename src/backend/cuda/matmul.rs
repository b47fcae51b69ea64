//! The tiled GEMM (`matmul` in `kernels/classifier.cu`) that filterbanks, the DCT and linear
//! layers lower to (see [`launch::Gemm`]).

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::device::ensure;
use super::{CudaBackend, CudaTensor, driver_err};
use crate::Result;
use crate::backend::launch::{Gemm, TILE};

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
}
